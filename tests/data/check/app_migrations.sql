-- A year of a SaaS app's hand-written migrations, run with psql -f: the corpus for
-- tests/test_check_agreement.py (check's predictions, statement by statement, against the server).

-- 0001 initial
CREATE TABLE tenants (id bigserial PRIMARY KEY, name text NOT NULL, plan text);
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    tenant_id bigint REFERENCES tenants (id),
    email text NOT NULL,
    legacy_flags integer
);
INSERT INTO tenants (name, plan) VALUES ('acme', 'pro'), ('globex', 'free');
INSERT INTO users (tenant_id, email) VALUES (1, 'a@acme.test'), (2, 'b@globex.test');

-- 0002 a table made and dropped in one transaction: never refused
BEGIN;
CREATE TABLE import_scratch (line text);
INSERT INTO import_scratch VALUES ('x');
DROP TABLE import_scratch;
COMMIT;

-- 0003 drop a column of a table with rows
ALTER TABLE users DROP COLUMN legacy_flags;

-- 0004 temporary tables are never refused
CREATE TEMP TABLE tmp_report AS SELECT id FROM users;
TRUNCATE tmp_report;
DROP TABLE tmp_report;

-- 0005 audit log, partitioned, with rows in one partition
CREATE TABLE audit_log (id bigint, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE audit_2024 PARTITION OF audit_log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE audit_2025 PARTITION OF audit_log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO audit_log VALUES (1, '2024-05-01', 'login');

-- 0006 retention: TRUNCATE a partition, then drop an old one
TRUNCATE audit_2024;
DROP TABLE audit_2024;

-- 0007 a column added and dropped again in one transaction (the table is old: refused)
BEGIN;
ALTER TABLE tenants ADD COLUMN tmp_score integer;
ALTER TABLE tenants DROP COLUMN tmp_score;
COMMIT;

-- 0008 rename, then drop under the new name
ALTER TABLE users RENAME COLUMN email TO email_address;
ALTER TABLE users DROP COLUMN email_address;

-- 0009 TRUNCATE … CASCADE reaches the referencing table
TRUNCATE tenants CASCADE;

-- 0010 a schema of reports, dropped whole
CREATE SCHEMA reporting;
CREATE TABLE reporting.daily (d date, n integer);
CREATE TABLE reporting.monthly (m date, n integer);
INSERT INTO reporting.daily VALUES ('2024-01-01', 3);
DROP SCHEMA reporting CASCADE;

-- 0011 an enum type dropped with CASCADE takes its columns with it
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE feedback (id integer, feeling mood, note text);
INSERT INTO feedback VALUES (1, 'happy', 'ok');
DROP TYPE mood CASCADE;

-- 0012 a domain, likewise
CREATE DOMAIN email_t AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE contacts (id integer, mail email_t);
INSERT INTO contacts VALUES (1, 'x@y.test');
BEGIN;
DROP DOMAIN email_t CASCADE;
ROLLBACK;

-- 0013 inheritance: dropping a parent column reaches the children
CREATE TABLE vehicles (id integer, wheels integer, color text);
CREATE TABLE cars (seats integer) INHERITS (vehicles);
INSERT INTO cars VALUES (1, 4, 'red', 5);
ALTER TABLE vehicles DROP COLUMN color;
DROP TABLE vehicles CASCADE;

-- 0014 an empty table made by the files (refused only with --protect-empty)
CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean);
ALTER TABLE feature_flags DROP COLUMN enabled;
DROP TABLE feature_flags;

-- 0015 search_path: unqualified names resolve in the first schema of the path
CREATE SCHEMA billing;
SET search_path TO billing, public;
CREATE TABLE invoices (id integer, total numeric);
INSERT INTO invoices VALUES (1, 9.99);
TRUNCATE invoices;
INSERT INTO invoices VALUES (2, 19.99);
ALTER TABLE invoices SET UNLOGGED;
RESET search_path;
DROP TABLE billing.invoices;

-- 0016 savepoints: what a ROLLBACK TO undoes is gone again
BEGIN;
CREATE TABLE staging (id integer);
SAVEPOINT before_load;
INSERT INTO staging VALUES (1);
ROLLBACK TO SAVEPOINT before_load;
DROP TABLE staging;
COMMIT;

-- 0017 a table moved to another schema, then truncated
CREATE SCHEMA archive;
ALTER TABLE users SET SCHEMA archive;
TRUNCATE archive.users;

-- 0018 quoted names keep their quotes
CREATE TABLE "Order Items" ("Qty" integer, sku text);
INSERT INTO "Order Items" VALUES (1, 'a');
ALTER TABLE "Order Items" DROP COLUMN "Qty";
DROP TABLE "Order Items";

-- 0019 CREATE TABLE AS carries rows
CREATE TABLE tenant_copy AS SELECT * FROM tenants;
DROP TABLE tenant_copy;
CREATE TABLE tenant_shape AS SELECT * FROM tenants WITH NO DATA;
DROP TABLE tenant_shape;
