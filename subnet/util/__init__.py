"""Small helpers with no project imports: one-line messages, an event-loop runner safe under nest_asyncio."""
