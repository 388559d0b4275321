package webhook

// RedactShown is redactShown, for tests.
var RedactShown = redactShown
