// Package cli is DeployDB's command line: the server commands (serve,
// migrate, config check) and a client of every API action, built on
// package client. One file per command group; main wires the parts that
// need the server (Env.Serve, Env.Migrate) and calls Execute.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

// Env is what the command line reads from and writes to, and the parts of
// the server main wires in.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads an environment variable; nil reads none.
	Getenv func(string) string
	// Serve runs the server until ctx is done (wired by main).
	Serve func(ctx context.Context, opts ServeOptions) error
	// Migrate applies pending migrations to the database (wired by main).
	Migrate func(ctx context.Context, database string) error
	// Copy copies a SQLite database into an empty PostgreSQL one (wired
	// by main).
	Copy func(ctx context.Context, from, to string) error
	// Backup writes a consistent copy of the SQLite database to the new
	// file (wired by main).
	Backup func(ctx context.Context, database, file string) error
}

// ServeOptions is what `deploydb serve` resolved from its flags, the
// environment and the defaults.
type ServeOptions struct {
	Config, Database, Listen string
	// InsecureAnonymous allows serving anonymous callers on an address
	// other than loopback.
	InsecureAnonymous bool
	// TLSCert and TLSKey, both or neither, serve HTTPS.
	TLSCert, TLSKey string
	// WebhookTimeout bounds one webhook call; WebhookLease is how long a
	// delivery under way stays claimed (longer than WebhookTimeout).
	WebhookTimeout, WebhookLease time.Duration
	// LogFormat is how the server writes its log: LogJSON (one JSON object
	// a line) or LogText (key=value, for people at a terminal).
	LogFormat string
	// LogLevel is the least level logged; debug adds a line per request.
	LogLevel slog.Level
	// Demo runs the demo (package demo) beside the server: its own
	// configuration when Config is "", a database in a temporary
	// directory when Database is "".
	Demo bool
}

// Log formats of serve --log-format.
const (
	LogJSON = "json"
	LogText = "text"
)

// Environment variables the command line reads.
const (
	EnvConfig   = "DEPLOYDB_CONFIG"
	EnvDatabase = "DEPLOYDB_DATABASE"
	EnvListen   = "DEPLOYDB_LISTEN"
	EnvURL      = "DEPLOYDB_URL"
	EnvToken    = "DEPLOYDB_TOKEN"
)

// Defaults of the flags that have an environment variable.
const (
	DefaultConfig   = "./config"
	DefaultDatabase = "./deploydb.db"
	DefaultListen   = "127.0.0.1:8080"
	DefaultServer   = "http://127.0.0.1:8080"
	DefaultTimeout  = 30 * time.Second
)

// Exit codes, documented in the root command's help and docs/cli.md.
const (
	ExitOK          = 0
	ExitFailure     = 1 // anything else: internal error, failed config check
	ExitUsage       = 2 // bad command line: unknown command or flag, wrong arguments
	ExitInvalid     = 3 // bad_request, invalid: the server refused the request's content
	ExitNotFound    = 4 // not_found
	ExitConflict    = 5 // conflict: already exists, or the state does not allow it
	ExitDenied      = 6 // unauthorized, forbidden
	ExitUnavailable = 7 // unavailable: server or database not reachable; retry later
)

// Output formats of client commands.
const (
	OutputTable = "table"
	OutputJSON  = "json"
)

const rootLong = `DeployDB records which artifact versions were deployed to which
environments, whether each deployment succeeded and was verified, and decides
when an artifact may move on to the next environment.

The server:   deploydb serve, deploydb migrate, deploydb config check DIR,
              deploydb token new|hash (entries for auth/tokens.yml)
The client:   every other command talks to a server over HTTP.

Client commands read the server URL from --server or DEPLOYDB_URL (default
http://127.0.0.1:8080) and a bearer token from --token or DEPLOYDB_TOKEN.
They print tables for people, and with --output json the API's JSON exactly
as the server sent it (indented), for scripts.

Exit codes:
  0  success
  1  any other failure (internal error, failed config check)
  2  bad usage: unknown command or flag, wrong arguments
  3  the server refused the request as malformed or invalid (bad_request, invalid)
  4  not found (not_found)
  5  conflict: already exists, or the current state does not allow it (conflict)
  6  not allowed: missing or unknown credentials, or no right (unauthorized, forbidden)
  7  unavailable: the server or its database cannot be reached; retry later

Errors go to stderr as "deploydb: <detail>", followed by one line per field
problem.`

// Execute runs the command line args (without the program name) and
// returns its error, which it has already printed to env.Stderr: main only
// turns it into an exit status with ExitCode.
func Execute(ctx context.Context, args []string, env Env) error {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	a := &app{env: env}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)

	// An error from cobra itself (unknown command or flag, wrong number of
	// arguments, a missing required flag) comes before any RunE starts;
	// knowing whether one started tells usage errors from failures.
	ran := false
	visit(root, func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				ran = true
				return run(cmd, args)
			}
		}
	})

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if !ran {
		var u *usageError
		if !errors.As(err, &u) {
			err = &usageError{err: err}
		}
	}
	printError(env.Stderr, cmd, err)
	return err
}

// ExitCode returns the exit status of an error Execute returned: 0 for nil,
// 2 for bad usage, and for an error from the server the status of its code
// (see the root command's help).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var u *usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	var x *exitError
	if errors.As(err, &x) {
		return x.code
	}
	var e *deploydb.Error
	if !errors.As(err, &e) {
		return ExitFailure
	}
	switch e.Code {
	case deploydb.EBADREQUEST, deploydb.EINVALID:
		return ExitInvalid
	case deploydb.ENOTFOUND:
		return ExitNotFound
	case deploydb.ECONFLICT:
		return ExitConflict
	case deploydb.EUNAUTHORIZED, deploydb.EFORBIDDEN:
		return ExitDenied
	case deploydb.EUNAVAILABLE:
		return ExitUnavailable
	}
	return ExitFailure
}

// usageError is a command line that does not make sense: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exitError fixes the exit status of err where its code would say
// otherwise.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// printError writes err to w as "deploydb: <detail>", then one indented
// line per field problem and, on a conflict, the current status.
func printError(w io.Writer, cmd *cobra.Command, err error) {
	fmt.Fprint(w, errorText(err))
	var u *usageError
	if errors.As(err, &u) && cmd != nil {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
}

// errorText renders err for stderr.
func errorText(err error) string {
	var b strings.Builder
	var e *deploydb.Error
	if !errors.As(err, &e) {
		fmt.Fprintf(&b, "deploydb: %s\n", err)
		return b.String()
	}
	fmt.Fprintf(&b, "deploydb: %s%s\n", wrapPrefix(err), e.Message)
	for _, f := range e.Fields {
		switch {
		case f.Field == "":
			fmt.Fprintf(&b, "  %s\n", f.Message)
		case strings.HasPrefix(e.Message, f.Field+" "+f.Message) && len(e.Fields) == 1:
			// The detail already says it all ("perPageSize must be ...").
		default:
			fmt.Fprintf(&b, "  %s: %s\n", f.Field, f.Message)
		}
	}
	if status := currentStatus(e.Current); status != "" {
		fmt.Fprintf(&b, "  current status: %s\n", status)
	}
	return b.String()
}

// wrapPrefix returns the context err's wrappers added in front of the
// error they wrap ("config ./config: "), so that it is not lost when the
// message of the *deploydb.Error inside is shown instead of err's text.
func wrapPrefix(err error) string {
	msg := err.Error()
	inner := ""
	for l := errors.Unwrap(err); l != nil; l = errors.Unwrap(l) {
		if !strings.HasSuffix(msg, l.Error()) {
			break
		}
		inner = l.Error()
	}
	if inner == "" {
		return ""
	}
	return strings.TrimSuffix(msg, inner)
}

// currentStatus returns the status of the current state a conflict carries,
// or "" when it carries none.
func currentStatus(current any) string {
	var raw []byte
	switch v := current.(type) {
	case nil:
		return ""
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		raw = b
	}
	var s struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s.Status
}

// visit calls fn on c and every command below it.
func visit(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		visit(sub, fn)
	}
}

// app holds one invocation's environment and global flags.
type app struct {
	env     Env
	server  string
	token   string
	output  string
	timeout time.Duration
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "deploydb",
		Short:         "DeployDB: the source of truth for artifact deployments through pipelines",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", DefaultServer, "URL of the DeployDB server (env "+EnvURL+")")
	pf.StringVar(&a.token, "token", "", "bearer token sent to the server (env "+EnvToken+")")
	pf.StringVarP(&a.output, "output", "o", OutputTable, "output format: table or json")
	pf.DurationVar(&a.timeout, "timeout", DefaultTimeout, "give up on a request to the server after this long (0: never)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{OutputTable, OutputJSON}, cobra.ShellCompDirectiveNoFileComp))

	root.AddGroup(
		&cobra.Group{ID: "server", Title: "Server commands:"},
		&cobra.Group{ID: "client", Title: "Client commands (talk to a server):"},
	)
	for _, c := range []*cobra.Command{a.serveCommand(), a.migrateCommand(), a.copyCommand(), a.backupCommand(), a.configCommand(), a.tokenCommand()} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		a.artifactCommand(), a.deploymentCommand(), a.promotionCommand(), a.flowCommand(), a.webhookCommand(),
		a.historyCommand(), a.statusCommand(), a.envCommand(), a.eventsCommand(), a.healthCommand(),
		a.importCommand(), a.doraCommand(), a.diffCommand(),
	} {
		c.GroupID = "client"
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("client")
	root.SetCompletionCommandGroupID("client")
	return root
}

// setting returns the value of a flag: the flag when given, else the
// environment variable when set, else the flag's default.
func (a *app) setting(cmd *cobra.Command, flag, envVar string) string {
	f := cmd.Flags().Lookup(flag)
	if f.Changed {
		return f.Value.String()
	}
	if v := a.env.Getenv(envVar); v != "" {
		return v
	}
	return f.DefValue
}

// call is one client command's connection to the server.
type call struct {
	*client.Client
	ctx    context.Context
	out    io.Writer
	format string
	body   []byte // the last successful response body, as sent
}

// connect returns a client of the server the flags and environment name,
// after checking the output format.
func (a *app) connect(cmd *cobra.Command) (*call, error) {
	format := a.output
	if format != OutputTable && format != OutputJSON {
		return nil, usagef("--output must be %s or %s, not %q", OutputTable, OutputJSON, format)
	}
	if a.timeout < 0 {
		return nil, usagef("--timeout must not be negative")
	}
	c := &call{ctx: cmd.Context(), out: a.env.Stdout, format: format}
	cl, err := client.New(a.setting(cmd, "server", EnvURL),
		client.WithToken(a.setting(cmd, "token", EnvToken)),
		client.WithHTTPClient(&http.Client{Timeout: a.timeout}),
		client.WithUserAgent("deploydb-cli"),
		client.WithResponseBody(func(b []byte) { c.body = b }),
	)
	if err != nil {
		return nil, err
	}
	c.Client = cl
	return c, nil
}

// print writes the result of the call: the response body as the server
// sent it (indented) with --output json, else the table table writes.
func (c *call) print(table func(w io.Writer) error) error {
	if c.format == OutputJSON {
		return writeJSON(c.out, c.body)
	}
	return table(c.out)
}

// groupCommand returns a command that only holds subcommands: run alone it
// prints its help; run with an unknown subcommand it is a usage error
// (cobra would otherwise print the help and succeed).
func groupCommand(use, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		// Run alone it only prints help, so "[flags]" would mislead.
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

// exactArgs is cobra.ExactArgs with a message that names the arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %d argument(s): %s; got %d", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}
