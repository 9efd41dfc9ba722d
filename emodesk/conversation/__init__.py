"""The conversation controller: an asyncio state machine joining audio, Live, emotion, store."""
