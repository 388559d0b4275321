package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
)

// TestBackupRestore backs up a SQLite database while a server writes to
// it, then restores the backup and serves it: the copy holds a consistent
// state (every artifact with its flow), at least every write acknowledged
// before the backup began, and the restored server carries on.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "deploydb.db")
	cfg := writeConfig(t)
	srv := launch(t, cfg, file, map[string]string{"HOOK": "http://127.0.0.1:9"})
	c := api{t: t, url: srv.URL}

	// A writer publishes all along, counting what was acknowledged.
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			code, _, err := try("POST", srv.URL+"/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": fmt.Sprintf("1.0.%d", i), "sourceUrl": "https://ci/b.jar"})
			if err != nil || code != 201 {
				t.Errorf("publish 1.0.%d: %d %v", i, code, err)
				return
			}
			acked.Add(1)
		}
	})
	if !pollUntil(10*time.Second, func() bool { return acked.Load() >= 20 }) {
		t.Fatalf("%d publishes acknowledged in 10 s", acked.Load())
	}
	before := acked.Load()
	backup := filepath.Join(dir, "backup.db")
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"backup", "--database", file, backup}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr.String())
	}
	close(stop)
	wg.Wait()
	if !strings.HasPrefix(stdout.String(), "backed up "+file+" to "+backup) {
		t.Errorf("backup said %q", stdout.String())
	}

	// A second backup to the same file is refused, and the first is intact.
	stderr.Reset()
	err := run(t.Context(), []string{"backup", "--database", file, backup}, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	if code := cli.ExitCode(err); code != cli.ExitConflict || !strings.Contains(stderr.String(), "exists") {
		t.Errorf("backup onto an existing file: exit %d, %q", code, stderr.String())
	}
	var all []deploydb.Artifact
	c.call("GET", "/api/artifacts?perPageSize=1000", nil, 200, &all)
	srv.stop()

	// Restore: a server on the backup.
	restored := launch(t, cfg, backup, map[string]string{"HOOK": "http://127.0.0.1:9"})
	r := api{t: t, url: restored.URL}
	var got []deploydb.Artifact
	r.call("GET", "/api/artifacts?perPageSize=1000", nil, 200, &got)
	if int64(len(got)) < before || len(got) > len(all) {
		t.Fatalf("the backup holds %d artifacts; %d were acknowledged before it began and %d at the end", len(got), before, len(all))
	}
	for _, a := range got {
		if f := r.flowOf(a.ID); len(f.Deployments) != 3 {
			t.Errorf("artifact %d in the backup: flow %+v, want 3 deployments", a.ID, f)
		}
	}
	var art deploydb.Artifact
	r.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "2.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	t.Logf("backup holds %d artifacts (%d acknowledged before it began, %d at the end)", len(got), before, len(all))
}

// TestBackupRefuses: backup names what is wrong with its arguments.
func TestBackupRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.db")
	if err := os.WriteFile(notDB, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		database, want string
	}{
		{filepath.Join(dir, "missing.db"), "no SQLite database at"},
		{notDB, "is not a DeployDB database"},
		{"postgres://deploydb@127.0.0.1/deploydb", "pg_dump"},
	} {
		var stderr bytes.Buffer
		err := run(t.Context(), []string{"backup", "--database", tt.database, filepath.Join(dir, "out.db")}, func(string) string { return "" }, strings.NewReader(""), &bytes.Buffer{}, &stderr)
		if cli.ExitCode(err) != cli.ExitInvalid || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("backup of %s: exit %d, %q; want exit %d naming %q", tt.database, cli.ExitCode(err), stderr.String(), cli.ExitInvalid, tt.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "out.db")); err == nil {
			t.Fatalf("backup of %s left out.db behind", tt.database)
		}
	}
}
