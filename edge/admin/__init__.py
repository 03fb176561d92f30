"""Administration of stores and terminals (issue 13): admin principals and their roles, admin
tokens, the admin API's actions and their audit log."""
