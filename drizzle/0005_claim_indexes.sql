DROP INDEX "ti_state_priority";--> statement-breakpoint
DROP INDEX "ti_worker";--> statement-breakpoint
DROP INDEX "ti_trigger";--> statement-breakpoint
CREATE INDEX "ti_claim_order" ON "task_instances" USING btree ("queue","priority_weight" DESC NULLS LAST,"scheduled_at","id") WHERE state = 'scheduled';--> statement-breakpoint
CREATE INDEX "ti_running" ON "task_instances" USING btree ("worker_id","dag_id") WHERE state = 'running';--> statement-breakpoint
CREATE INDEX "ti_deferred_retry" ON "task_instances" USING btree ("state","next_retry_at") WHERE state in ('deferred', 'up_for_retry');--> statement-breakpoint
CREATE INDEX "ti_trigger" ON "task_instances" USING btree ("trigger_id") WHERE trigger_id is not null;