CREATE TABLE "iterate_items" (
	"ti_id" bigint NOT NULL,
	"item_index" integer NOT NULL,
	"state" text NOT NULL,
	"result" jsonb,
	"error" text,
	"attempts" integer NOT NULL,
	"finished_at" timestamp with time zone NOT NULL,
	CONSTRAINT "iterate_items_ti_id_item_index_pk" PRIMARY KEY("ti_id","item_index")
);
--> statement-breakpoint
CREATE TABLE "ti_limit_keys" (
	"ti_id" bigint NOT NULL,
	"key" text NOT NULL,
	"limit" integer NOT NULL,
	CONSTRAINT "ti_limit_keys_ti_id_key_pk" PRIMARY KEY("ti_id","key")
);
--> statement-breakpoint
ALTER TABLE "dag_runs" ADD COLUMN "priority" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "dag_runs" ADD COLUMN "tags" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "task_instances" ADD COLUMN "progress" jsonb;--> statement-breakpoint
ALTER TABLE "iterate_items" ADD CONSTRAINT "iterate_items_ti_id_task_instances_id_fk" FOREIGN KEY ("ti_id") REFERENCES "public"."task_instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ti_limit_keys" ADD CONSTRAINT "ti_limit_keys_ti_id_task_instances_id_fk" FOREIGN KEY ("ti_id") REFERENCES "public"."task_instances"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ti_limit_keys_key" ON "ti_limit_keys" USING btree ("key");