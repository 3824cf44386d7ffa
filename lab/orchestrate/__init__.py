"""Starting and stopping the lab's processes (node, mock chains, proxy, nginx)."""
