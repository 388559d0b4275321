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

// TestRebinder: the rebinder rebinds as rebind does, first time and after,
// and holds at most its size of queries.
func TestRebinder(t *testing.T) {
	r := &rebinder{size: 3}
	queries := []string{`SELECT ?`, `SELECT ?, ?`, `SELECT 1`, `SELECT ?, '?', ?`, `SELECT ?, ?, ?`}
	for range 3 {
		for _, q := range queries {
			if got, want := r.rebind(q), rebind(q); got != want {
				t.Errorf("rebinder.rebind(%q) = %q, want %q", q, got, want)
			}
			n := 0
			r.queries.Range(func(any, any) bool { n++; return true })
			if n > 3 {
				t.Fatalf("the rebinder holds %d queries, more than its size 3", n)
			}
		}
	}
}

func BenchmarkRebind(b *testing.B) {
	const q = `INSERT INTO events (type, service, environment, artifact_id, flow_id, deployment_id, status, detail, actor, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`
	b.Run("rebind", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = rebind(q)
		}
	})
	b.Run("rebinder", func(b *testing.B) {
		r := &rebinder{size: rebindCacheSize}
		b.ReportAllocs()
		for b.Loop() {
			_ = r.rebind(q)
		}
	})
}
