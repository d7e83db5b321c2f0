CREATE TABLE "callback_requests" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"scope" text NOT NULL,
	"kind" text NOT NULL,
	"dag_id" text NOT NULL,
	"run_pk" integer NOT NULL,
	"ti_id" bigint,
	"try_number" integer,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"worker_id" text,
	"claimed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "task_instances" ADD COLUMN "reschedule_date" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "callback_requests" ADD CONSTRAINT "callback_requests_run_pk_dag_runs_id_fk" FOREIGN KEY ("run_pk") REFERENCES "public"."dag_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "callback_requests_claim" ON "callback_requests" USING btree ("claimed_at","id");--> statement-breakpoint
CREATE INDEX "ti_reschedule" ON "task_instances" USING btree ("reschedule_date") WHERE state = 'up_for_reschedule';