"""OAuth sign-in and tokens: the per-connection token store (`tokens`), the token endpoint and the sign-in flows
(`oauth`), and the terminal side of signing in (`signin`)."""
