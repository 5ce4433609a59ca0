-- storyd initial schema, PostgreSQL dialect. Keep in step with
-- ../sqlite/00001_init.sql: both dialects have the same tables, columns,
-- constraints and indexes. Migrations only move forward: never edit an
-- applied file, add the next numbered one.

-- +goose Up

CREATE TABLE users (
    id           uuid        PRIMARY KEY,
    email        text        NOT NULL DEFAULT '',
    display_name text        NOT NULL DEFAULT '',
    avatar_url   text        NOT NULL DEFAULT '',
    is_anonymous boolean     NOT NULL DEFAULT false,
    -- Set when an anonymous user's data moved to a registered account; the
    -- anonymous id is dead afterwards.
    migrated_to  uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE projects (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX projects_user_id_idx ON projects (user_id);

CREATE TABLE chat_sessions (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id      uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title           text        NOT NULL DEFAULT '',
    is_active       boolean     NOT NULL DEFAULT true,
    message_count   integer     NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    last_message_at timestamptz,
    -- Highest event seq any stored message of the session occupies.
    last_seq        bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);

-- ListSessions: a user's active sessions, most recently updated first.
CREATE INDEX chat_sessions_user_active_updated_idx
    ON chat_sessions (user_id, is_active, updated_at DESC);
-- Cascades from projects and per-project lookups.
CREATE INDEX chat_sessions_project_id_idx ON chat_sessions (project_id);

CREATE TABLE messages (
    id                uuid        PRIMARY KEY,
    session_id        uuid        NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    seq               bigint      NOT NULL CHECK (seq >= 1),
    end_seq           bigint      NOT NULL,
    -- ID of the user message the turn started with; NULL outside a turn.
    turn_id           uuid,
    role              text        NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content           text        NOT NULL DEFAULT '',
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    status            text        NOT NULL DEFAULT 'complete'
                                  CHECK (status IN ('complete', 'partial', 'cancelled', 'failed')),
    client_message_id text        CHECK (client_message_id <> ''),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT messages_seq_range_check CHECK (end_seq >= seq),
    -- Also the index of RecentMessages and ListMessages.
    CONSTRAINT messages_session_id_seq_key UNIQUE (session_id, seq)
);

-- Idempotent retries: a client message id is used once per session.
CREATE UNIQUE INDEX messages_session_id_client_message_id_key
    ON messages (session_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
-- GetReply: the assistant message of a turn.
CREATE INDEX messages_session_id_turn_id_idx ON messages (session_id, turn_id);

CREATE TABLE dossiers (
    project_id    uuid        PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    snapshot_json jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(snapshot_json) = 'object'),
    version       integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- ListDossiers: a user's dossiers, most recently updated first.
CREATE INDEX dossiers_user_id_idx ON dossiers (user_id, updated_at DESC);

CREATE TABLE dossier_versions (
    -- Versions belong to their dossier: deleting it deletes them, so a
    -- dossier created again starts over at version 1.
    project_id    uuid        NOT NULL REFERENCES dossiers (project_id) ON DELETE CASCADE,
    version       integer     NOT NULL CHECK (version >= 1),
    snapshot_json jsonb       NOT NULL CHECK (jsonb_typeof(snapshot_json) = 'object'),
    source        text        NOT NULL CHECK (source IN ('extraction', 'user')),
    seq_from      bigint      NOT NULL DEFAULT 0,
    seq_to        bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (project_id, version)
);
