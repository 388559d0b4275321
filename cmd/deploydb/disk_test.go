//go:build linux

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/cli"
)

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid (prlimit(2))
// and returns the one it replaces: a write at or beyond limit bytes into
// any file fails with EFBIG (Go ignores the SIGXFSZ that comes with it),
// as on a full disk. The hard limit stays, so that the soft one can be
// raised again without privileges.
func setFileSizeLimit(t *testing.T, pid int, limit uint64) uint64 {
	t.Helper()
	var old syscall.Rlimit
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&old)), 0, 0); errno != 0 {
		t.Fatalf("prlimit(%d, RLIMIT_FSIZE): %v", pid, errno)
	}
	lim := syscall.Rlimit{Cur: min(limit, old.Max), Max: old.Max}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
		t.Fatalf("prlimit(%d, RLIMIT_FSIZE, %d): %v", pid, limit, errno)
	}
	return old.Cur
}

// TestSQLiteDiskFull makes every write of a server to its SQLite database
// fail, as on a full disk: RLIMIT_FSIZE of 1 byte on the process, so that
// SQLite's writes fail with EFBIG (SQLITE_IOERR; a real full disk gives
// ENOSPC, SQLITE_FULL, mapped alike). Writes answer 503 with a problem
// that names the file and says what is wrong, never a 500; reads go on;
// the soak that comes due meanwhile cannot be applied, and the timer tries
// again after growing pauses, not in a loop. Once the limit is lifted the
// server recovers by itself: the timer applies the soak within seconds,
// with nothing else to wake it, the dispatcher makes the call it
// causes, and writes succeed (the one refused was not half stored). The
// file passes PRAGMA integrity_check and has lost nothing.
func TestSQLiteDiskFull(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "deploydb.db")
	recv := newCountingReceiver(t, 1)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":     "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml":   "description: Integration\n",
		"environments/staging.yml": "description: Staging\n",
		"pipelines/standard.yml":   "environments:\n  integ: {promotions: [bake]}\n  staging: {}\n",
		"promotions/bake.yml":      "type: soak\nattributes: {duration: 2s}\n",
		"webhook/all.yml":          "hooks:\n  - {name: all, url: '${env:HOOK}/all', events: [deployment.created]}\n",
	})
	srv := spawn(t, dir, file, map[string]string{"HOOK": recv.URL})
	c := api{t: t, url: srv.URL}
	var art deploydb.Artifact
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, &art)
	flow := c.flowOf(art.ID)
	integ, staging := flow.Deployments[0].ID, flow.Deployments[1].ID
	if !pollUntil(10*time.Second, func() bool { return recv.answered("dd_1") > 0 }) {
		t.Fatalf("integ's deployment.created call not made\n%s", srv.logs)
	}
	var before []deploydb.Event
	c.call("GET", "/api/events", nil, 200, &before)

	// The soak starts now, and comes due while the disk is full.
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", integ), map[string]any{"status": "COMPLETED"}, 200, nil)
	unlimited := setFileSizeLimit(t, srv.cmd.Process.Pid, 1)
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "2.0.0", "sourceUrl": "https://ci/b.jar"}},
		{"POST", "/api/environments/staging/lock", map[string]any{"reason": "disk full"}},
		{"POST", fmt.Sprintf("/api/flows/%d/cancel", flow.ID), map[string]any{"reason": "disk full"}},
	} {
		what := r.method + " " + r.path
		code, body, ctype, err := tryHeader(r.method, srv.URL+r.path, r.body)
		if err != nil {
			t.Fatalf("%s on a full disk: %v", what, err)
		}
		if code != 503 {
			t.Errorf("%s on a full disk: %d %s, want 503", what, code, body)
			continue
		}
		p := problem(t, what, code, body, ctype)
		if p.Code != deploydb.EUNAVAILABLE || !strings.Contains(p.Detail, "the SQLite database "+file+" is unavailable: the disk refused") {
			t.Errorf("%s on a full disk: %q, want it to name %s and say the disk refused the write", what, p.Detail, file)
		}
	}
	for _, path := range []string{"/api/artifacts", "/api/flows", "/api/events", "/api/status"} {
		c.call("GET", path, nil, 200, nil)
	}
	// The timer tries to apply the soak, and cannot; it tries again
	// after a pause, not in a busy loop.
	const timerFailed = `msg="timer: applying soaks and freeze windows"`
	if !pollUntil(20*time.Second, func() bool { return strings.Contains(srv.logs.String(), timerFailed) }) {
		t.Fatalf("the timer did not try the soak on the full disk\n%s", srv.logs)
	}
	time.Sleep(3 * time.Second) // the disk stays full a while
	if n := strings.Count(srv.logs.String(), timerFailed); n > 4 {
		t.Errorf("the timer failed %d times in 3 s on the full disk: it should pause 1 s, then 2 s, ... between tries", n)
	}

	setFileSizeLimit(t, srv.cmd.Process.Pid, unlimited)
	lifted := time.Now()
	if !pollUntil(15*time.Second, func() bool { return recv.answered("dd_2") > 0 }) {
		t.Fatalf("the soak was not applied, or staging's call not made, within 15 s of the disk's return\n%s", srv.logs)
	}
	t.Logf("soak applied and staging's call made %s after the disk's return", time.Since(lifted).Round(time.Millisecond))
	flow = c.flowOf(art.ID)
	if flow.Deployments[0].Status != deploydb.DeploymentSuccess || flow.Deployments[1].Status != deploydb.DeploymentCreated {
		t.Errorf("after the full disk: integ %s, staging %s; want SUCCESS, CREATED", flow.Deployments[0].Status, flow.Deployments[1].Status)
	}
	// What was refused was not stored: it goes through now, as new.
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "2.0.0", "sourceUrl": "https://ci/b.jar"}, 201, nil)
	c.call("PATCH", fmt.Sprintf("/api/deployments/%d", staging), map[string]any{"status": "STARTED"}, 200, nil)
	var after []deploydb.Event
	c.call("GET", "/api/events", nil, 200, &after)
	for i, e := range before {
		if i >= len(after) || after[i] != e {
			t.Fatalf("the event log changed under the full disk: before %+v, after %+v", before, after)
		}
	}
	srv.stop(t)
	if strings.Contains(srv.logs.String(), "internal error") {
		t.Errorf("the full disk was logged as an internal error:\n%s", srv.logs)
	}
	checkIntegrity(t, file)
}

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

// TestSQLiteDiskFullHoldsCalls: a call whose attempt cannot be recorded
// because the disk filled while it was under way is not made again and
// again while writes fail. (On SQLite the dispatcher's claims are kept in
// memory, a read that works on a full disk: without a check of the
// writes, each lapsed claim sent the call again, every lease, none of it
// recorded.) Once writes work again it is made again, with the same
// webhook-id, and recorded.
func TestSQLiteDiskFullHoldsCalls(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "deploydb.db")
	var mu sync.Mutex
	calls := map[string]int{}
	first, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		calls[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		once.Do(func() { close(first); <-gate })
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return calls["dd_1"]
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"services/billing.yml":   "artifacts: [com.example:billing]\npipelines: [standard]\n",
		"environments/integ.yml": "description: Integration\n",
		"pipelines/standard.yml": "environments:\n  integ: {}\n",
		"webhook/all.yml":        "hooks:\n  - {name: all, url: '${env:HOOK}/all', events: [deployment.created]}\n",
	})
	srv := spawn(t, dir, file, map[string]string{"HOOK": recv.URL}, "--webhook-timeout", "1s", "--webhook-lease", "2s")
	c := api{t: t, url: srv.URL}
	c.call("POST", "/api/artifacts", map[string]any{"group": "com.example", "name": "billing", "version": "1.0.0", "sourceUrl": "https://ci/b.jar"}, 201, nil)
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatalf("no call\n%s", srv.logs)
	}
	// The disk fills while the call is under way: its attempt cannot be
	// recorded. The claim lapses after 2 s; watch for two leases more.
	unlimited := setFileSizeLimit(t, srv.cmd.Process.Pid, 1)
	close(gate)
	time.Sleep(6 * time.Second)
	if n := count(); n != 1 {
		t.Errorf("dd_1 was called %d times while the disk was full (none of them recorded), want 1", n)
	}
	setFileSizeLimit(t, srv.cmd.Process.Pid, unlimited)
	// Writes work again: the call is made again and recorded.
	var got []deploydb.Delivery
	for deadline := time.Now().Add(15 * time.Second); ; {
		c.call("GET", "/api/webhook-deliveries", nil, 200, &got)
		if len(got) == 1 && got[0].Status == deploydb.DeliveryDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the disk had room again, deliveries %+v, want the one delivered\n%s", got, srv.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(); n != 2 {
		t.Errorf("dd_1 was called %d times, want 2: the one not recorded and the one after", n)
	}
}
