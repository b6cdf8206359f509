"""The command-centre board (指挥调度中心): pages, their live updates and their sign-in, served by
dispatch (docs/dispatch.md, "The command-centre board")."""
