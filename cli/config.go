package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

func (a *app) configCommand() *cobra.Command {
	cmd := groupCommand("config", "Check a configuration directory; show the server's configuration",
		`Check a model configuration directory before deploying it (config check),
and show the services, environments, pipelines and promotions a running
server has loaded (config services|environments|pipelines|promotions).`)
	cmd.AddCommand(
		a.configCheckCommand(),
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
