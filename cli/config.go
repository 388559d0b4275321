package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

func (a *app) configCommand() *cobra.Command {
	cmd := groupCommand("config", "Check a configuration directory; show and reload the server's configuration",
		`Check a model configuration directory before deploying it (config check),
show the services, environments, pipelines and promotions a running server
has loaded (config services|environments|pipelines|promotions), show which
configuration it has in force (config status), and make it reload its
configuration directory (config reload).`)
	cmd.AddCommand(
		a.configCheckCommand(),
		a.configStatusCommand(),
		a.configReloadCommand(),
		a.configListCommand("services", "service", "Show the configured services, or one of them",
			func(c *call) error {
				list, err := c.Services(c.ctx)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return serviceTable(w, list) })
			},
			func(c *call, name string) error {
				s, err := c.Service(c.ctx, name)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return serviceTable(w, []*deploydb.Service{s}) })
			}),
		a.configListCommand("environments", "environment", "Show the configured environments, or one of them",
			func(c *call) error {
				list, err := c.Environments(c.ctx)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return environmentTable(w, list) })
			},
			func(c *call, name string) error {
				e, err := c.Environment(c.ctx, name)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return environmentTable(w, []*deploydb.Environment{e}) })
			}),
		a.configListCommand("pipelines", "pipeline", "Show the configured pipelines, or one of them",
			func(c *call) error {
				list, err := c.Pipelines(c.ctx)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return pipelineTable(w, list) })
			},
			func(c *call, name string) error {
				p, err := c.Pipeline(c.ctx, name)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return pipelineTable(w, []*deploydb.Pipeline{p}) })
			}),
		a.configListCommand("promotions", "promotion", "Show the configured promotions, or one of them",
			func(c *call) error {
				list, err := c.Promotions(c.ctx)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return promotionTable(w, list) })
			},
			func(c *call, name string) error {
				p, err := c.Promotion(c.ctx, name)
				if err != nil {
					return err
				}
				return c.print(func(w io.Writer) error { return promotionTable(w, []*deploydb.Promotion{p}) })
			}),
	)
	return cmd
}

func (a *app) configCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check [DIR]",
		Short: "Check a configuration directory without starting a server",
		Long: `Load and validate a model configuration directory exactly as the server would,
and print a summary. On failure print every problem of every file, one per
line as "file:line: field: message", and exit 1.

DIR defaults to $DEPLOYDB_CONFIG, then ./config. ${env:NAME} references are
expanded from the environment, as the server does.`,
		Example: `  deploydb config check ./config`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes at most one argument, DIR; got %d", cmd.CommandPath(), len(args))
			}
			return nil
		},
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := a.env.Getenv(EnvConfig)
			if len(args) == 1 {
				dir = args[0]
			}
			if dir == "" {
				dir = DefaultConfig
			}
			cfg, err := config.LoadWith(dir, config.Options{Getenv: a.env.Getenv})
			if err != nil {
				// A configuration that does not load is a failed check
				// (exit 1), whatever the error's code would say.
				return &exitError{code: ExitFailure, err: err}
			}
			_, err = fmt.Fprintf(a.env.Stdout, "ok: %s, %s, %s, %s (checksum %s)\n",
				plural(len(cfg.Services), "service"), plural(len(cfg.Environments), "environment"),
				plural(len(cfg.Pipelines), "pipeline"), plural(len(cfg.Promotions), "promotion"), cfg.Checksum)
			return err
		},
	}
}

// configListCommand returns "config <plural> [NAME]": the list, or one.
func (a *app) configListCommand(noun, singular, short string, list func(c *call) error, get func(c *call, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   noun + " [NAME]",
		Short: short,
		Long: fmt.Sprintf(`Show the %s the server has loaded from its configuration directory,
or the one named NAME (exit 4 if there is none).`, noun),
		Example: fmt.Sprintf("  deploydb config %s\n  deploydb config %s NAME -o json", noun, noun),
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes at most one argument, the %s name; got %d", cmd.CommandPath(), singular, len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				return get(c, args[0])
			}
			return list(c)
		},
	}
}

// noArgs refuses arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments; got %d", cmd.CommandPath(), len(args))
	}
	return nil
}

func (a *app) configStatusCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Aliases: []string{"show"},
		Short:   "Show the configuration the server has in force and its last reload",
		Long: `Show the checksum, directory and files of the configuration the server has
in force, when it was loaded, and when the server last tried to reload it,
with every problem if that attempt failed. No configuration value is shown.`,
		Example: "  deploydb config status\n  deploydb config status -o json | jq -r .checksum",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			st, err := c.ConfigStatus(c.ctx)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return configStatusTable(w, st) })
		},
	}
}

func (a *app) configReloadCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the server reload its configuration directory",
		Long: `Make the server load its configuration directory again, as SIGHUP does, and
show the configuration then in force. Flows already created finish under
the configuration they were created with.

A directory that does not load is refused: the server keeps the
configuration it has, and the command prints every problem, one per line as
"file:line: field: message", and exits 3. Run "deploydb config check" on
the directory first.`,
		Example: "  deploydb config check /etc/deploydb/config && deploydb config reload",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			st, err := c.ReloadConfig(c.ctx)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return configStatusTable(w, st) })
		},
	}
}

// configStatusTable writes a configuration status: one setting per line,
// the problems of the last attempt indented below it, then the files.
func configStatusTable(w io.Writer, st *deploydb.ConfigStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	lastError := strings.Split(st.LastError, "\n")
	for _, kv := range [][2]string{
		{"CHECKSUM", st.Checksum},
		{"DIRECTORY", st.Dir},
		{"LOADED", timeCell(st.LoadedAt)},
		{"LAST ATTEMPT", timeCell(st.LastAttemptAt)},
		{"LAST ERROR", lastError[0]},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], cell(kv[1]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range lastError[1:] {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(st.Files))
	for _, f := range st.Files {
		rows = append(rows, []string{f.Path, f.SHA256})
	}
	return table(w, []string{"FILE", "SHA256"}, rows)
}
