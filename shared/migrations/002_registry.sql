-- This service's own copy of the unit registry, kept from the compacted topic registry.units.
CREATE TABLE units (
    code    text PRIMARY KEY,
    name    text NOT NULL,
    level   text NOT NULL,
    parent  text,
    area    jsonb,
    aliases text[] NOT NULL DEFAULT '{}',
    lon     double precision,
    lat     double precision
);
CREATE INDEX units_parent ON units (parent);
CREATE INDEX units_level ON units (level);

CREATE TABLE departments (
    code       text PRIMARY KEY,
    name       text NOT NULL,
    parent     text NOT NULL,
    categories text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX departments_parent ON departments (parent);

CREATE TABLE handlers (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    unit    text NOT NULL,
    role    text NOT NULL,
    on_duty boolean NOT NULL DEFAULT true
);
CREATE INDEX handlers_unit ON handlers (unit);
