//go:build linux

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
)

// TestSQLiteReadOnly starts a server on a SQLite database that it may read
// but not write: the file is read-only, or its directory is (SQLite must
// create the -wal and -shm files beside it). SQLite would open such a file
// read-only without a word, and every write would fail; the server refuses
// to start instead, exits unavailable (7) and says which file and why. The
// database is untouched: once writable again, it serves what it held.
//
// File permissions do not stop root, and CI runs as root: there the server
// runs as nobody (65534), which root may make it.
func TestSQLiteReadOnly(t *testing.T) {
	t.Parallel()
	cfg := t.TempDir()
	writeFiles(t, cfg, map[string]string{
		"services/billing.yml":   "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml": "description: Integration\n",
		"pipelines/standard.yml": "environments:\n  integ: {}\n",
	})
	data := t.TempDir()
	file := filepath.Join(data, "deploydb.db")
	srv := spawn(t, cfg, file, nil)
	var art deploydb.Artifact
	api{t: t, url: srv.URL}.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	srv.stop(t)

	bin := os.Args[0]
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		// nobody must reach the binary, the config and the database.
		bin = filepath.Join(t.TempDir(), "deploydb")
		b, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), cfg, filepath.Dir(cfg), filepath.Dir(data)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := filepath.WalkDir(cfg, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[d.IsDir()])
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The directory first: the second case leaves behind the -wal and
	// -shm files that the server could create.
	for _, tc := range []struct {
		name              string
		fileMode, dirMode os.FileMode
		want              string
	}{
		{"Directory", 0o644, 0o555, "its directory is read-only"},
		{"File", 0o444, 0o777, "the database file is read-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chmod(file, tc.fileMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(data, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = os.Chmod(data, 0o755)
				// SQLite gives the -wal and -shm files it creates the
				// database file's mode.
				for _, f := range []string{file, file + "-wal", file + "-shm"} {
					if err := os.Chmod(f, 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
						t.Error(err)
					}
				}
			}()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg, "--database", file, "--listen", "127.0.0.1:0")
			cmd.Env = append(os.Environ(), asMain+"=1")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != cli.ExitUnavailable {
				t.Fatalf("serve on a read-only database: %v, want exit %d\n%s", err, cli.ExitUnavailable, out)
			}
			if !strings.Contains(string(out), "the SQLite database "+file+" cannot be used: "+tc.want) || strings.Contains(string(out), "deploydb ready") {
				t.Errorf("serve on a read-only database said:\n%s\nwant it to name %s and say %q", out, file, tc.want)
			}
		})
	}

	srv = spawn(t, cfg, file, nil)
	var got deploydb.Artifact
	api{t: t, url: srv.URL}.call("GET", fmt.Sprintf("/api/artifacts/%d", art.ID), nil, 200, &got)
	srv.stop(t)
	checkIntegrity(t, file)
}

// checkIntegrity checks that the SQLite database file passes PRAGMA
// integrity_check.
func checkIntegrity(t *testing.T, file string) {
	t.Helper()
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok string
	if err := db.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("%s: integrity_check: %q %v", file, ok, err)
	}
}
