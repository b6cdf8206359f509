// compose-config prints a compose file as Docker Compose resolves it (interpolation from the
// environment, YAML anchors and merges, entries without a value taken from the environment or
// dropped), as JSON, with the Compose Specification's reference loader (compose-go, the library
// `docker compose` itself uses). No Docker engine is needed: tests/ops reads its output.
//
//	compose-config -f deploy/docker-compose.yml -p wangge
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	file := flag.String("f", "docker-compose.yml", "compose file")
	project := flag.String("p", "", "project name")
	flag.Parse()
	opts, err := cli.NewProjectOptions(
		[]string{*file},
		cli.WithOsEnv,
		cli.WithName(*project),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compose-config:", err)
		os.Exit(1)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "compose-config:", err)
		os.Exit(1)
	}
	out, err := p.MarshalJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compose-config:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
