"""Starting and running gateway processes: listening sockets, and ``serve --workers N``."""
