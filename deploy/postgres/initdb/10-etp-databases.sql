-- Run once by the PostgreSQL image on an empty data folder (docker-compose.yml): the databases
-- of the auth and experiment services; `bin/migrate` (the migrations service) fills them.
CREATE DATABASE auth;
CREATE DATABASE experiment;
