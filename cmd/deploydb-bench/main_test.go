package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRunArgs checks that bad arguments are refused before anything is
// measured, and that a PostgreSQL URL never reaches the report.
func TestRunArgs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"ErrScale", []string{"-scale", "10k,1g"}, `"1g" is not a history size`},
		{"ErrArgs", []string{"extra"}, "unexpected arguments"},
		{"ErrBin", []string{"-bin", "/nonexistent/deploydb"}, "make build"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, func(string) string { return "" }, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("run(%q) = %v, want an error with %q", c.args, err, c.want)
			}
		})
	}
	got := strings.Join(redact([]string{"-postgres", "postgres://u:secret@h/db", "-postgres=postgresql://u:secret@h/db", "-scale", "10k"}), " ")
	if strings.Contains(got, "secret") || !strings.Contains(got, "-scale 10k") {
		t.Errorf("redact: %q", got)
	}
}
