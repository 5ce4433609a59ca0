package llm

import "testing"

func TestZZTranscript(t *testing.T) {
	turns := []string{
		"A film about my grandmother",
		"Her name is Ada Whitlock and she kept the lighthouse on Gull Rock in Maine for forty years.",
		"It is set in the winter of 1962 when the Coast Guard decided to automate the light.",
		"The big storm is the center: a fishing boat loses power and she keeps the light going by hand.",
		"In the end she saves the crew but still has to leave.",
		"It should feel quiet and bittersweet, like a small drama.",
	}
	var msgs []Message
	for _, u := range turns {
		msgs = append(msgs, user(u))
		r := InterviewReply(msgs)
		t.Logf("USER: %s\nBOT:  %s", u, r)
		msgs = append(msgs, assistant(r))
	}
}
