"""Reading the world: audio, lyrics, tags and MIDI from files, nothing else.

Every reader raises its own one-line error (AudioError, LyricsError, MidiError) or returns None, so a
scan can turn any bad file into a row with a human-readable reason.
"""
