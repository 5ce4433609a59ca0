-- storyd initial schema, SQLite dialect. Keep in step with
-- ../postgres/00001_init.sql: both dialects have the same tables, columns,
-- constraints and indexes. Migrations only move forward: never edit an
-- applied file, add the next numbered one.
--
-- Representation: STRICT tables; UUIDs as canonical lower-case TEXT;
-- booleans as INTEGER 0/1; timestamps as fixed-width UTC TEXT
-- ('2006-01-02T15:04:05.000000Z', microseconds, like timestamptz), which
-- sorts chronologically as text and round-trips exactly; JSON as TEXT
-- checked with json_valid.

-- +goose Up

CREATE TABLE users (
    id           TEXT    PRIMARY KEY NOT NULL,
    email        TEXT    NOT NULL DEFAULT '',
    display_name TEXT    NOT NULL DEFAULT '',
    avatar_url   TEXT    NOT NULL DEFAULT '',
    is_anonymous INTEGER NOT NULL DEFAULT 0 CHECK (is_anonymous IN (0, 1)),
    -- Set when an anonymous user's data moved to a registered account; the
    -- anonymous id is dead afterwards.
    migrated_to  TEXT    REFERENCES users (id) ON DELETE SET NULL,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
) STRICT;

CREATE TABLE projects (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE INDEX projects_user_id_idx ON projects (user_id);

CREATE TABLE chat_sessions (
    id              TEXT    PRIMARY KEY NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id      TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title           TEXT    NOT NULL DEFAULT '',
    is_active       INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    message_count   INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    last_message_at TEXT,
    -- Highest event seq any stored message of the session occupies.
    last_seq        INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
) STRICT;

-- ListSessions: a user's active sessions, most recently updated first.
CREATE INDEX chat_sessions_user_active_updated_idx
    ON chat_sessions (user_id, is_active, updated_at DESC);
-- Cascades from projects and per-project lookups.
CREATE INDEX chat_sessions_project_id_idx ON chat_sessions (project_id);

CREATE TABLE messages (
    id                TEXT    PRIMARY KEY NOT NULL,
    session_id        TEXT    NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq               INTEGER NOT NULL CHECK (seq >= 1),
    end_seq           INTEGER NOT NULL,
    -- ID of the user message the turn started with; NULL outside a turn.
    turn_id           TEXT,
    role              TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content           TEXT    NOT NULL DEFAULT '',
    metadata          TEXT    NOT NULL DEFAULT '{}'
                              CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    status            TEXT    NOT NULL DEFAULT 'complete'
                              CHECK (status IN ('complete', 'partial', 'cancelled', 'failed')),
    client_message_id TEXT    CHECK (client_message_id <> ''),
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    CONSTRAINT messages_seq_range_check CHECK (end_seq >= seq),
    -- Also the index of RecentMessages and ListMessages.
    CONSTRAINT messages_session_id_seq_key UNIQUE (session_id, seq)
) STRICT;

-- Idempotent retries: a client message id is used once per session.
CREATE UNIQUE INDEX messages_session_id_client_message_id_key
    ON messages (session_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
-- GetReply: the assistant message of a turn.
CREATE INDEX messages_session_id_turn_id_idx ON messages (session_id, turn_id);

CREATE TABLE dossiers (
    project_id    TEXT    PRIMARY KEY NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    snapshot_json TEXT    NOT NULL DEFAULT '{}'
                          CHECK (json_valid(snapshot_json) AND json_type(snapshot_json) = 'object'),
    version       INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;

-- ListDossiers: a user's dossiers, most recently updated first.
CREATE INDEX dossiers_user_id_idx ON dossiers (user_id, updated_at DESC);

CREATE TABLE dossier_versions (
    -- Versions belong to their dossier: deleting it deletes them, so a
    -- dossier created again starts over at version 1.
    project_id    TEXT    NOT NULL REFERENCES dossiers (project_id) ON DELETE CASCADE,
    version       INTEGER NOT NULL CHECK (version >= 1),
    snapshot_json TEXT    NOT NULL
                          CHECK (json_valid(snapshot_json) AND json_type(snapshot_json) = 'object'),
    source        TEXT    NOT NULL CHECK (source IN ('extraction', 'user')),
    seq_from      INTEGER NOT NULL DEFAULT 0,
    seq_to        INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT    NOT NULL,
    PRIMARY KEY (project_id, version)
) STRICT;
