CREATE TABLE "rendered_fields" (
	"ti_id" bigint PRIMARY KEY NOT NULL,
	"try_number" integer NOT NULL,
	"fields" jsonb NOT NULL,
	"rendered_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "connections" ALTER COLUMN "extra" DROP DEFAULT;--> statement-breakpoint
ALTER TABLE "connections" ALTER COLUMN "extra" SET DATA TYPE text USING "extra"::text;--> statement-breakpoint
ALTER TABLE "connections" ALTER COLUMN "extra" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "description" text;--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "logs" ADD COLUMN "source" text DEFAULT 'task' NOT NULL;--> statement-breakpoint
ALTER TABLE "variables" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "xcom" ADD COLUMN "codec" text;--> statement-breakpoint
ALTER TABLE "xcom" ADD COLUMN "data" "bytea";--> statement-breakpoint
ALTER TABLE "xcom" ADD COLUMN "size" integer;--> statement-breakpoint
ALTER TABLE "rendered_fields" ADD CONSTRAINT "rendered_fields_ti_id_task_instances_id_fk" FOREIGN KEY ("ti_id") REFERENCES "public"."task_instances"("id") ON DELETE cascade ON UPDATE no action;