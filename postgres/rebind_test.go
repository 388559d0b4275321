package postgres

import "testing"

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`(hook = ? OR substr(hook, 1, length(?::text) + 1) IN (?::text || '?', ?::text || '#'))`,
			`(hook = $1 OR substr(hook, 1, length($2::text) + 1) IN ($3::text || '?', $4::text || '#'))`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`LIMIT ? OFFSET ?`, `LIMIT $1 OFFSET $2`},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
