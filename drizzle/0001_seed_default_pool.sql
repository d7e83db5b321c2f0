-- Every task uses default_pool unless it names another; 128 slots, as in Airflow.
INSERT INTO "pools" ("name", "slots", "description", "include_deferred")
VALUES ('default_pool', 128, 'Default pool', false)
ON CONFLICT ("name") DO NOTHING;
