CREATE TABLE "connections" (
	"conn_id" text PRIMARY KEY NOT NULL,
	"conn_type" text NOT NULL,
	"host" text,
	"port" integer,
	"login" text,
	"password" text,
	"schema" text,
	"extra" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "dag_runs" (
	"id" serial PRIMARY KEY NOT NULL,
	"dag_id" text NOT NULL,
	"run_id" text NOT NULL,
	"run_type" text NOT NULL,
	"state" text NOT NULL,
	"logical_date" timestamp with time zone NOT NULL,
	"data_interval_start" timestamp with time zone,
	"data_interval_end" timestamp with time zone,
	"conf" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"queued_at" timestamp with time zone NOT NULL,
	"start_date" timestamp with time zone,
	"end_date" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "dags" (
	"dag_id" text PRIMARY KEY NOT NULL,
	"fileloc" text NOT NULL,
	"serialized" jsonb NOT NULL,
	"schedule" text,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"is_paused" boolean DEFAULT false NOT NULL,
	"is_active" boolean DEFAULT true NOT NULL,
	"description" text,
	"tags" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"fingerprint" text NOT NULL,
	"last_parsed_at" timestamp with time zone NOT NULL,
	"last_interval_end" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "import_errors" (
	"fileloc" text PRIMARY KEY NOT NULL,
	"error" text NOT NULL,
	"timestamp" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"job_type" text NOT NULL,
	"hostname" text NOT NULL,
	"pid" integer NOT NULL,
	"state" text NOT NULL,
	"start_date" timestamp with time zone NOT NULL,
	"latest_heartbeat" timestamp with time zone NOT NULL,
	"end_date" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "logs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ti_id" bigint NOT NULL,
	"try_number" integer NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"level" text NOT NULL,
	"message" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pools" (
	"name" text PRIMARY KEY NOT NULL,
	"slots" integer NOT NULL,
	"description" text,
	"include_deferred" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "task_instance_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ti_id" bigint NOT NULL,
	"dag_id" text NOT NULL,
	"run_id" text NOT NULL,
	"task_id" text NOT NULL,
	"map_index" integer NOT NULL,
	"try_number" integer NOT NULL,
	"state" text NOT NULL,
	"worker_id" text,
	"start_date" timestamp with time zone,
	"end_date" timestamp with time zone,
	"duration" double precision,
	"error" text
);
--> statement-breakpoint
CREATE TABLE "task_instances" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_pk" integer NOT NULL,
	"dag_id" text NOT NULL,
	"run_id" text NOT NULL,
	"task_id" text NOT NULL,
	"map_index" integer DEFAULT -1 NOT NULL,
	"state" text NOT NULL,
	"try_number" integer DEFAULT 0 NOT NULL,
	"max_tries" integer DEFAULT 0 NOT NULL,
	"priority_weight" integer DEFAULT 1 NOT NULL,
	"pool" text DEFAULT 'default_pool' NOT NULL,
	"pool_slots" integer DEFAULT 1 NOT NULL,
	"queue" text DEFAULT 'default' NOT NULL,
	"operator" text NOT NULL,
	"worker_id" text,
	"heartbeat_at" timestamp with time zone,
	"scheduled_at" timestamp with time zone,
	"start_date" timestamp with time zone,
	"end_date" timestamp with time zone,
	"duration" double precision,
	"next_retry_at" timestamp with time zone,
	"next_method" text,
	"next_kwargs" jsonb,
	"trigger_id" bigint,
	"trigger_timeout" timestamp with time zone,
	"error" text
);
--> statement-breakpoint
CREATE TABLE "triggers" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"kwargs" text NOT NULL,
	"hash" text NOT NULL,
	"created_date" timestamp with time zone NOT NULL,
	"triggerer_id" text,
	"claimed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "variables" (
	"key" text PRIMARY KEY NOT NULL,
	"val" text NOT NULL,
	"description" text
);
--> statement-breakpoint
CREATE TABLE "xcom" (
	"run_pk" integer NOT NULL,
	"task_id" text NOT NULL,
	"map_index" integer DEFAULT -1 NOT NULL,
	"key" text NOT NULL,
	"value" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "xcom_run_pk_task_id_map_index_key_pk" PRIMARY KEY("run_pk","task_id","map_index","key")
);
--> statement-breakpoint
ALTER TABLE "task_instances" ADD CONSTRAINT "task_instances_run_pk_dag_runs_id_fk" FOREIGN KEY ("run_pk") REFERENCES "public"."dag_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "xcom" ADD CONSTRAINT "xcom_run_pk_dag_runs_id_fk" FOREIGN KEY ("run_pk") REFERENCES "public"."dag_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "dag_runs_dag_run_id" ON "dag_runs" USING btree ("dag_id","run_id");--> statement-breakpoint
CREATE UNIQUE INDEX "dag_runs_dag_logical_date" ON "dag_runs" USING btree ("dag_id","logical_date");--> statement-breakpoint
CREATE INDEX "dag_runs_state" ON "dag_runs" USING btree ("state");--> statement-breakpoint
CREATE INDEX "jobs_type_hb" ON "jobs" USING btree ("job_type","latest_heartbeat");--> statement-breakpoint
CREATE INDEX "logs_ti_try" ON "logs" USING btree ("ti_id","try_number");--> statement-breakpoint
CREATE INDEX "tih_ti" ON "task_instance_history" USING btree ("ti_id","try_number");--> statement-breakpoint
CREATE UNIQUE INDEX "ti_run_task_map" ON "task_instances" USING btree ("run_pk","task_id","map_index");--> statement-breakpoint
CREATE INDEX "ti_state_priority" ON "task_instances" USING btree ("state","queue","priority_weight","scheduled_at");--> statement-breakpoint
CREATE INDEX "ti_worker" ON "task_instances" USING btree ("worker_id");--> statement-breakpoint
CREATE INDEX "ti_run_state" ON "task_instances" USING btree ("run_pk","state");--> statement-breakpoint
CREATE INDEX "ti_trigger" ON "task_instances" USING btree ("trigger_id");--> statement-breakpoint
CREATE UNIQUE INDEX "triggers_hash" ON "triggers" USING btree ("hash");--> statement-breakpoint
CREATE INDEX "triggers_triggerer" ON "triggers" USING btree ("triggerer_id");