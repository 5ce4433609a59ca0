-- Dossier extraction cursors (sqlite dialect; keep in step with the other dialect).
-- +goose Up
-- extracted_seq is how far the project's dossier extraction has read one
-- session: every turn whose user message has a seq at or below it was handed
-- to the model (or refused by it twice). The dossier actor writes it when a
-- batch is done and, on activation, reads the turns after it back into its
-- batch, so turns waiting for extraction survive a restart. A table rather
-- than a column of chat_sessions: the dossier actor is its only writer, and
-- it never contends with the session actor's updates of its session row.
CREATE TABLE dossier_cursors (
    project_id    TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    session_id    TEXT    NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    extracted_seq INTEGER NOT NULL DEFAULT 0 CHECK (extracted_seq >= 0),
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (project_id, session_id)
) STRICT;
-- Cascades from chat_sessions.
CREATE INDEX dossier_cursors_session_id_idx ON dossier_cursors (session_id);

-- What was stored before cursors existed counts as read: the batches that
-- were waiting in memory then are gone either way, and re-extracting whole
-- histories on the first activation would cost a model call per project.
INSERT INTO dossier_cursors (project_id, session_id, extracted_seq, updated_at)
    SELECT project_id, id, last_seq, updated_at FROM chat_sessions;
