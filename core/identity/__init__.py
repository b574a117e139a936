"""Identity: users, roles and permissions, machine clients, authentication, sessions."""
