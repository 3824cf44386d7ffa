"""The contract loader: verify, prepare and cache contract code (in memory and persistently).

Public API: :class:`~node.loader.loader.Loader`, :class:`~node.loader.store.CodeCacheStore`
(the persistent-store protocol), :class:`~node.loader.loader.CodeRejected`.
"""
