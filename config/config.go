// Package config reads and validates the model configuration directory
// (DESIGN.md §2) into an immutable *deploydb.Config:
//
//	services/<ident>.yml       description, artifacts, pipelines, promotions, failureStrategy
//	environments/<ident>.yml   description, webhook, production, freezes
//	pipelines/<ident>.yml      description, environments (ordered: the pipeline order)
//	promotions/<ident>.yml     type, description, attributes
//	webhook/<any>.yml          the global webhooks, merged in file-name order
//
// The ident of a model is its file name without the .yml or .yaml
// extension (letters, digits, '.', '_' and '-'). auth/tokens.yml holds the
// API tokens (not part of the model, nor of its checksum). Hidden files and
// files with other extensions are not read; any other unknown
// top-level directory is an error, so that a typo such as "service/" does
// not load as an empty configuration.
//
// Loading is strict: unknown keys and wrong types are errors, every
// reference between models is checked, and every problem of every file is
// reported at once, each with its file, line and field, as an *Error. The
// 0.3 spellings are accepted: failure_strategy, Stop (for notify) and the
// promotion class names (for basic and manual).
//
// Any string value may reference the environment as ${env:NAME}; the value
// is not expanded again, and an unset or empty variable is an error.
//
// Config.Checksum is the SHA-256 of a sha256sum(1) manifest of the files
// read, sorted by path: one line "<sha256 hex>  <path>\n" per file, so
// that an operator can reproduce it with
//
//	find services environments pipelines promotions webhook -type f | LC_ALL=C sort | xargs sha256sum | sha256sum
//
// when the directory holds only configuration files.
//
// A Holder keeps the configuration a server has in force and reloads it:
// a directory that does not load never replaces the one in force.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/deploydb/deploydb"
)

// Options tunes LoadWith.
type Options struct {
	// Getenv looks up the variables that strings reference as
	// ${env:NAME}. Nil means os.Getenv.
	Getenv func(string) string
}

// Load reads and validates the configuration directory dir, expanding
// ${env:NAME} from the process environment. The returned Config is
// complete: defaults applied, names normalised, no nil map or slice, and
// Dir the absolute path of dir.
//
// It returns an *Error (which unwraps to a deploydb.EINVALID *deploydb.Error)
// listing every problem when dir is missing, unreadable, or holds an invalid
// configuration; never a partial Config.
func Load(dir string) (*deploydb.Config, error) {
	return LoadWith(dir, Options{})
}

// LoadWith is Load with options.
func LoadWith(dir string, opts Options) (*deploydb.Config, error) {
	l := &loader{dir: dir, getenv: opts.Getenv}
	if l.getenv == nil {
		l.getenv = os.Getenv
	}
	cfg := l.load()
	if len(l.problems) > 0 {
		return nil, newError(l.problems)
	}
	return cfg, nil
}

// kinds lists the model directories in the order they are loaded.
func kinds() []kind {
	return []kind{kindService, kindEnvironment, kindPipeline, kindPromotion, kindWebhook}
}

// ignoredDirs are the top-level directories that are not model kinds.
func ignoredDirs() []string {
	return []string{authDir} // API tokens: loadAuth
}

// loader holds the state of one Load.
type loader struct {
	dir      string
	getenv   func(string) string
	problems []Problem
	refs     []ref
	// idents holds, per kind, every model that has a file, even one that
	// failed to load, so that a broken file does not also make every
	// reference to it an error.
	idents map[kind]map[string]string // ident -> file
	files  []loadedFile
	hooks  []placedHook
}

// loadedFile is one file read from the directory.
type loadedFile struct {
	path string // slash-separated, relative to the directory
	sum  [sha256.Size]byte
}

func (l *loader) addf(file string, line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: file, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (l *loader) load() *deploydb.Config {
	cfg := &deploydb.Config{
		Dir:          l.dir,
		Services:     map[string]*deploydb.Service{},
		Environments: map[string]*deploydb.Environment{},
		Pipelines:    map[string]*deploydb.Pipeline{},
		Promotions:   map[string]*deploydb.Promotion{},
		Webhook:      deploydb.Webhook{},
		Files:        []deploydb.ConfigFile{},
	}
	if abs, err := filepath.Abs(l.dir); err == nil {
		cfg.Dir = abs
	}
	if !l.checkRoot() {
		return nil
	}
	l.idents = map[kind]map[string]string{}
	for _, k := range kinds() {
		l.idents[k] = map[string]string{}
		for _, name := range l.list(k) {
			l.loadFile(cfg, k, name)
		}
	}
	l.checkRefs()
	l.checkHooks(cfg)
	l.loadAuth(cfg)

	slices.SortFunc(l.files, func(a, b loadedFile) int { return strings.Compare(a.path, b.path) })
	manifest := sha256.New()
	for _, f := range l.files {
		sum := hex.EncodeToString(f.sum[:])
		cfg.Files = append(cfg.Files, deploydb.ConfigFile{Path: f.path, SHA256: sum})
		fmt.Fprintf(manifest, "%s  %s\n", sum, f.path)
	}
	cfg.Checksum = hex.EncodeToString(manifest.Sum(nil))
	return cfg
}

// checkRoot reports whether the configuration directory can be read, and
// every top-level directory in it is one Load knows. A typo such as
// "service/" would otherwise load as an empty configuration.
func (l *loader) checkRoot() bool {
	info, err := os.Stat(l.dir)
	switch {
	case err != nil:
		l.addf("", 0, "configuration directory %s: %s", l.dir, describeErr(err))
		return false
	case !info.IsDir():
		l.addf("", 0, "configuration directory %s: not a directory", l.dir)
		return false
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		l.addf("", 0, "configuration directory %s: %s", l.dir, describeErr(err))
		return false
	}
	var known []string
	for _, k := range kinds() {
		known = append(known, string(k))
	}
	known = append(known, ignoredDirs()...)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || slices.Contains(known, name) {
			continue
		}
		if info, err := os.Stat(filepath.Join(l.dir, name)); err == nil && info.IsDir() {
			l.addf(name, 0, "unknown directory; valid: %s", strings.Join(known, ", "))
		}
	}
	return true
}

// describeErr returns the reason of a file system error without the path.
func describeErr(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var perr *fs.PathError
	if errors.As(err, &perr) {
		return perr.Err.Error()
	}
	return err.Error()
}

// list returns the names of the YAML files in the directory of kind k,
// sorted. A missing directory has none. Hidden files (editor backups and
// lock files) and files with another extension are skipped.
func (l *loader) list(k kind) []string {
	dir := filepath.Join(l.dir, string(k))
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		l.addf(string(k), 0, "%s", describeErr(err))
		return nil
	case !info.IsDir():
		l.addf(string(k), 0, "not a directory")
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.addf(string(k), 0, "%s", describeErr(err))
		return nil
	}
	var names []string
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, ".") && isYAML(name) {
			names = append(names, name)
		}
	}
	return names
}

// isYAML reports whether name has a YAML extension.
func isYAML(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	return ext == ".yml" || ext == ".yaml"
}

// loadFile reads and decodes one file of kind k into cfg.
func (l *loader) loadFile(cfg *deploydb.Config, k kind, name string) {
	file := string(k) + "/" + name
	ident := strings.TrimSuffix(name, path.Ext(name))
	if k != kindWebhook {
		if !validIdent(ident) {
			l.addf(file, 0, "invalid %s name %q: a file name must be letters, digits, '.', '_' and '-' before .yml", k.noun(), ident)
			return
		}
		if other, dup := l.idents[k][ident]; dup {
			l.addf(file, 0, "%s %q is also defined in %s", k.noun(), ident, other)
			return
		}
		l.idents[k][ident] = file
	}
	data, ok := l.read(file)
	if !ok {
		return
	}
	d := &decoder{file: file, getenv: l.getenv}
	defer func() {
		l.problems = append(l.problems, d.problems...)
		l.refs = append(l.refs, d.refs...)
		l.hooks = append(l.hooks, d.hooks...)
	}()
	body, ok := d.parse(data)
	if !ok {
		return
	}
	switch k {
	case kindService:
		cfg.Services[ident] = d.service(ident, body)
	case kindEnvironment:
		cfg.Environments[ident] = d.environment(ident, body)
	case kindPipeline:
		cfg.Pipelines[ident] = d.pipeline(ident, body)
	case kindPromotion:
		cfg.Promotions[ident] = d.promotion(ident, body)
	case kindWebhook:
		d.webhook(cfg.Webhook, body, "")
	}
}

// validIdent reports whether s can name a model: it appears in URLs, on
// command lines and in messages, so it is kept to a safe alphabet.
func validIdent(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// read returns the content of file, which must be a regular file of at most
// maxFileSize bytes of UTF-8, and records it for the checksum.
func (l *loader) read(file string) ([]byte, bool) {
	f, err := os.Open(filepath.Join(l.dir, filepath.FromSlash(file)))
	if err != nil {
		l.addf(file, 0, "%s", describeErr(err))
		return nil, false
	}
	defer f.Close()
	// Stat the open file, not the name: a FIFO or device would block or
	// never end, and the name may be swapped between the two calls.
	info, err := f.Stat()
	if err != nil {
		l.addf(file, 0, "%s", describeErr(err))
		return nil, false
	}
	if !info.Mode().IsRegular() {
		l.addf(file, 0, "not a regular file")
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		l.addf(file, 0, "%s", describeErr(err))
		return nil, false
	}
	if len(data) > maxFileSize {
		l.addf(file, 0, "larger than %d bytes: not a configuration file", maxFileSize)
		return nil, false
	}
	l.files = append(l.files, loadedFile{path: file, sum: sha256.Sum256(data)})
	if !utf8.Valid(data) {
		l.addf(file, invalidUTF8Line(data), "not valid UTF-8")
		return nil, false
	}
	return data, true
}

// invalidUTF8Line returns the line of the first byte of data that is not
// valid UTF-8.
func invalidUTF8Line(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return 1 + bytes.Count(data[:i], []byte("\n"))
		}
		i += size
	}
	return 0
}

// checkRefs reports every reference to a model that has no file.
func (l *loader) checkRefs() {
	for _, r := range l.refs {
		if _, ok := l.idents[r.kind][r.name.value]; !ok {
			l.problems = append(l.problems, Problem{
				File:    r.file,
				Line:    r.name.line,
				Field:   r.field,
				Message: fmt.Sprintf("unknown %s %s", r.kind.noun(), r.name),
			})
		}
	}
}
