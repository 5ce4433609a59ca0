-- Dossier protection (sqlite dialect; keep in step with the other dialect).
-- +goose Up
-- protection_json holds what people edited by hand in a dossier: an opaque
-- JSON object to the store, replaced by SaveDossier and left alone by
-- UpdateDossier.
ALTER TABLE dossiers
    ADD COLUMN protection_json TEXT NOT NULL DEFAULT '{}'
                               CHECK (json_valid(protection_json) AND json_type(protection_json) = 'object');
