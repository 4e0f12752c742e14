"""The store: what must hold across processes and machines (conversations, their owners, the
lease of each conversation's turn, each live turn's event log, stop requests).

* :mod:`.interface`: the :class:`~.interface.Store` every engine implements, and its records;
* :mod:`.messages`: how a conversation's state is stored, each message once (both engines);
* :mod:`.sqlite`: the SQLite engine (one machine, any number of processes);
* :mod:`.postgres`: the PostgreSQL engine (several machines);
* :mod:`.burr_hooks`: Burr's hooks into the store and the tracking folder;
* :mod:`.engines`: :func:`~.engines.open_store`, which picks the engine from the settings.

The modules import each other in that order only: there is no import cycle in the package
(``tests/test_structure.py``).
"""
