package actors

import "errors"

// Sentinel errors returned by Sessions; test with errors.Is.
var (
	// ErrNotFound: the session does not exist, or is not the caller's, or was
	// deleted. Callers answer 404 either way so that existence never leaks.
	ErrNotFound = errors.New("actors: session not found")
	// ErrProjectMismatch: the session belongs to another project than the one named.
	ErrProjectMismatch = errors.New("actors: session belongs to another project")
	// ErrInvalid: the store refused the input (e.g. text it cannot hold).
	ErrInvalid = errors.New("actors: invalid input")
	// ErrUnavailable: the store could not be reached; the request may be retried.
	ErrUnavailable = errors.New("actors: store unavailable")
	// ErrTooManyPending: the session already holds as many chats waiting for
	// their reply as it takes.
	ErrTooManyPending = errors.New("actors: too many chats waiting in this session")
	// ErrDossierExists: the project already has a dossier.
	ErrDossierExists = errors.New("actors: the project already has a dossier")
	// ErrVersionConflict: an edit named a dossier version that is no longer
	// the current one.
	ErrVersionConflict = errors.New("actors: the dossier changed since that version")
	// ErrShuttingDown: the server is stopping and takes no new work.
	ErrShuttingDown = errors.New("actors: shutting down")
	// ErrSlowSubscriber: a subscriber's queue was full and it was dropped.
	ErrSlowSubscriber = errors.New("actors: subscriber too slow")
	// ErrInvalidAfterSeq: a subscription asked to resume after a seq the
	// session has not reached.
	ErrInvalidAfterSeq = errors.New("actors: after_seq is beyond the session's latest event")
	// ErrSessionClosed: the session actor stopped while the subscriber followed it.
	ErrSessionClosed = errors.New("actors: session closed")
)
