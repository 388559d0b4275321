package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/client"
)

func (a *app) envCommand() *cobra.Command {
	cmd := groupCommand("env", "Show environments with their locks; lock and unlock them",
		`Show the environments with their locks and freezes in force, and lock or
unlock one.

A lock holds activation: while an environment is locked, deployments that
become due there wait (NOT_STARTED, with a WAITING reason) instead of being
created; what already runs there is not touched. Unlocking activates what
waited. A freeze window from the environment's configuration holds
activation the same way, by itself.`)
	cmd.Aliases = []string{"environment", "environments"}
	cmd.AddCommand(a.envListCommand(), a.envGetCommand(), a.envLockCommand(), a.envUnlockCommand())
	return cmd
}

func (a *app) envListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the environments with their locks and freezes",
		Example: `  deploydb env list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			list, err := c.EnvironmentViews(c.ctx)
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return environmentViewTable(w, list) })
		},
	}
}

func (a *app) envGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get NAME",
		Short:   "Show one environment with its lock and freeze",
		Example: `  deploydb env get prod -o json`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			e, err := c.EnvironmentView(c.ctx, args[0])
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return environmentViewTable(w, []*client.EnvironmentView{e}) })
		},
	}
}

func (a *app) envLockCommand() *cobra.Command {
	var f actionFlags
	cmd := &cobra.Command{
		Use:   "lock NAME --reason TEXT",
		Short: "Lock an environment: hold activation there",
		Long: `Lock environment NAME: nothing new is activated there until it is unlocked;
deployments that become due wait, and what already runs is not touched.
The reason is required; it shows in env list, status and the event log.

Exits 4 if the environment is not configured, 5 if it is locked already.`,
		Example: `  deploydb env lock prod --reason "release freeze until the incident is resolved"`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			reason, err := f.required()
			if err != nil {
				return err
			}
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			l, err := c.LockEnvironment(c.ctx, args[0], reason, client.IdempotencyKey(f.key))
			if err != nil {
				return err
			}
			return c.print(func(w io.Writer) error { return lockTable(w, l) })
		},
	}
	f.add(cmd, false)
	return cmd
}

func (a *app) envUnlockCommand() *cobra.Command {
	var f actionFlags
	cmd := &cobra.Command{
		Use:   "unlock NAME",
		Short: "Unlock an environment: what waited there is activated",
		Long: `Unlock environment NAME: what waited there is activated (CREATED) unless a
freeze window still holds it; for each service the newest waiting
deployment is activated and the older ones are superseded. The reason is
optional. The server answers with no content: the command prints
"unlocked NAME", and nothing with -o json.

Exits 4 if the environment is not locked.`,
		Example: `  deploydb env unlock prod --reason "incident resolved"`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect(cmd)
			if err != nil {
				return err
			}
			if err := c.UnlockEnvironment(c.ctx, args[0], f.reason, client.IdempotencyKey(f.key)); err != nil {
				return err
			}
			if c.format == OutputJSON {
				return nil
			}
			_, err = fmt.Fprintf(c.out, "unlocked %s\n", args[0])
			return err
		},
	}
	f.add(cmd, true)
	return cmd
}

// environmentViewTable writes environments with their locks and freezes.
func environmentViewTable(w io.Writer, list []*client.EnvironmentView) error {
	rows := make([][]string, 0, len(list))
	for _, e := range list {
		prod := "no"
		if e.Production {
			prod = "yes"
		}
		lock := ""
		if e.Lock != nil {
			lock = e.Lock.Reason + " (" + lockedBy(e.Lock) + ")"
		}
		rows = append(rows, []string{e.Ident, prod, lock, e.Frozen, short(e.Description)})
	}
	return table(w, []string{"NAME", "PRODUCTION", "LOCKED", "FROZEN", "DESCRIPTION"}, rows)
}

// lockTable writes a lock.
func lockTable(w io.Writer, l *deploydb.Lock) error {
	return table(w, []string{"ENVIRONMENT", "REASON", "BY", "SINCE"},
		[][]string{{l.Environment, l.Reason, l.Actor, timeCell(l.CreatedAt)}})
}
