"""live.py: a source image animated in real time by a camera or a network stream
(docs/live.md). capture.py reads the camera, session.py animates the newest frame, server.py,
outputs.py and stats.py are where the results go, command.py is the command line."""
