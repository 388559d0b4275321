package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/deploydb/deploydb"
)

// Backup writes a consistent copy of the database at src to the new file
// dst while servers go on using src: one read transaction of src is copied
// (VACUUM INTO), so the copy holds every write committed before the backup
// began and nothing of the writes that commit while it runs. The copy is
// written beside dst, synced, checked with integrity_check and only then
// renamed to dst, so dst is either a whole backup or absent. Backup refuses
// a dst that exists and a src that is not a DeployDB database. It returns
// the size of the copy.
func Backup(ctx context.Context, src, dst string) (int64, error) {
	if _, err := os.Stat(src); err != nil {
		return 0, deploydb.Errorf(deploydb.EINVALID, "no SQLite database at %s", src)
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, deploydb.Errorf(deploydb.ECONFLICT, "%s exists: a backup never overwrites a file", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("sqlite: backup to %s: %w", dst, err)
	}
	// Not the store's read-only readers: query_only refuses VACUUM INTO.
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: src}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return 0, fmt.Errorf("sqlite: open %s: %w", src, err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('artifacts', 'deployments', 'events', 'goose_db_version')`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("sqlite: read %s: %w", src, err)
	}
	if tables != 4 {
		return 0, deploydb.Errorf(deploydb.EINVALID, "%s is not a DeployDB database", src)
	}

	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	name := tmp.Name()
	_ = tmp.Close()
	_ = os.Remove(name) // VACUUM INTO wants to create the file itself
	defer os.Remove(name)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, name); err != nil {
		return 0, fmt.Errorf("sqlite: backup %s: %w", src, err)
	}
	if err := check(ctx, name); err != nil {
		return 0, err
	}
	size, err := syncFile(name)
	if err != nil {
		return 0, err
	}
	// A link, unlike a rename, fails if dst appeared meanwhile.
	if err := os.Link(name, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, deploydb.Errorf(deploydb.ECONFLICT, "%s exists: a backup never overwrites a file", dst)
		}
		return 0, fmt.Errorf("sqlite: backup to %s: %w", dst, err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return size, nil
}

// check runs integrity_check on the database file at path.
func check(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return fmt.Errorf("sqlite: check %s: %w", path, err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return fmt.Errorf("sqlite: check %s: %w", path, err)
	}
	if result != "ok" {
		return fmt.Errorf("sqlite: the copy fails integrity_check: %s", result)
	}
	return nil
}

// syncFile fsyncs the file at path and returns its size.
func syncFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sqlite: backup: sync: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	return st.Size(), nil
}
