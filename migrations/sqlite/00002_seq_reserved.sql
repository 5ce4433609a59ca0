-- Reserved event seqs (sqlite dialect; keep in step with the other dialect).
-- +goose Up
-- seq_reserved is the highest session event seq handed to a session actor.
-- An actor numbers events only inside a block it reserved, so seqs that were
-- published but never stored (a crash mid-reply) are never reused.
ALTER TABLE chat_sessions
    ADD COLUMN seq_reserved INTEGER NOT NULL DEFAULT 0 CHECK (seq_reserved >= 0);
