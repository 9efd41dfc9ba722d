"""The functions the model may call: a registry of small typed handlers, one per
function (`registry.py`), and the handlers (`emotion.py`, ...). Which tools a session
declares is the profile's choice (`emodesk.core.profiles`), the emotion report only
with consent."""
