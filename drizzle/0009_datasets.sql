CREATE TABLE "dag_run_dataset_events" (
	"run_pk" integer NOT NULL,
	"event_id" bigint NOT NULL,
	CONSTRAINT "dag_run_dataset_events_run_pk_event_id_pk" PRIMARY KEY("run_pk","event_id")
);
--> statement-breakpoint
CREATE TABLE "dag_schedule_datasets" (
	"dag_id" text NOT NULL,
	"dataset_id" integer NOT NULL,
	CONSTRAINT "dag_schedule_datasets_dag_id_dataset_id_pk" PRIMARY KEY("dag_id","dataset_id")
);
--> statement-breakpoint
CREATE TABLE "dataset_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"dataset_id" integer NOT NULL,
	"extra" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"source_dag_id" text,
	"source_run_id" text,
	"source_task_id" text,
	"source_map_index" integer,
	"timestamp" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "datasets" (
	"id" serial PRIMARY KEY NOT NULL,
	"uri" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pending_dataset_events" (
	"dag_id" text NOT NULL,
	"event_id" bigint NOT NULL,
	"dataset_id" integer NOT NULL,
	CONSTRAINT "pending_dataset_events_dag_id_dataset_id_event_id_pk" PRIMARY KEY("dag_id","dataset_id","event_id")
);
--> statement-breakpoint
CREATE TABLE "task_outlet_datasets" (
	"dag_id" text NOT NULL,
	"task_id" text NOT NULL,
	"dataset_id" integer NOT NULL,
	CONSTRAINT "task_outlet_datasets_dag_id_task_id_dataset_id_pk" PRIMARY KEY("dag_id","task_id","dataset_id")
);
--> statement-breakpoint
ALTER TABLE "dag_run_dataset_events" ADD CONSTRAINT "dag_run_dataset_events_run_pk_dag_runs_id_fk" FOREIGN KEY ("run_pk") REFERENCES "public"."dag_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dag_run_dataset_events" ADD CONSTRAINT "dag_run_dataset_events_event_id_dataset_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."dataset_events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dag_schedule_datasets" ADD CONSTRAINT "dag_schedule_datasets_dag_id_dags_dag_id_fk" FOREIGN KEY ("dag_id") REFERENCES "public"."dags"("dag_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dag_schedule_datasets" ADD CONSTRAINT "dag_schedule_datasets_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dataset_events" ADD CONSTRAINT "dataset_events_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pending_dataset_events" ADD CONSTRAINT "pending_dataset_events_dag_id_dags_dag_id_fk" FOREIGN KEY ("dag_id") REFERENCES "public"."dags"("dag_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pending_dataset_events" ADD CONSTRAINT "pending_dataset_events_event_id_dataset_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."dataset_events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "task_outlet_datasets" ADD CONSTRAINT "task_outlet_datasets_dag_id_dags_dag_id_fk" FOREIGN KEY ("dag_id") REFERENCES "public"."dags"("dag_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "task_outlet_datasets" ADD CONSTRAINT "task_outlet_datasets_dataset_id_datasets_id_fk" FOREIGN KEY ("dataset_id") REFERENCES "public"."datasets"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "dag_run_dataset_events_event" ON "dag_run_dataset_events" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "dag_schedule_datasets_dataset" ON "dag_schedule_datasets" USING btree ("dataset_id");--> statement-breakpoint
CREATE INDEX "dataset_events_dataset" ON "dataset_events" USING btree ("dataset_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "datasets_uri" ON "datasets" USING btree ("uri");--> statement-breakpoint
CREATE INDEX "pending_dataset_events_event" ON "pending_dataset_events" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "task_outlet_datasets_dataset" ON "task_outlet_datasets" USING btree ("dataset_id");