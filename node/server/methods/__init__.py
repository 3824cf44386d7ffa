"""The node's JSON-RPC methods, one module per group, each over the narrow interfaces it needs.

* :mod:`.table` — the method table (:class:`~.table.MethodTable`): wire name -> handler and its
  admission rules; groups declare their methods with :func:`~.table.rpc`.
* :mod:`.ports` — what each group needs from the rest of the node (``Protocol`` types), so a group
  can be built and tested in-process against small fakes.
* :mod:`.params` — parameter parsers shared by the groups (addresses, hashes, block tags, objects
  of named fields, transactions).
* Groups: :mod:`.chain_reads` (Ethereum reads and Dubhe lookups), :mod:`.admission`
  (``dubhe_sendTransaction``), :mod:`.control` (admin: production pause/resume, log level),
  :mod:`.node_info` (``dubhe_status``), :mod:`.contracts` (deploy and read-only calls),
  :mod:`.l1` (``dubhe_getL1Head``), :mod:`.subscriptions` (WebSocket pubsub).

Adding a method: write it on the group that owns what it needs (or a new group with its own port),
mark it ``@rpc("namespace_name")``; :func:`node.server.node.Node` registers every group.
"""
