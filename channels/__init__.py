"""The ways people reach the advisor: the HTTP API (``channels.http``), the web widget it serves
(``channels.widget``) and the Telegram bot (``channels.telegram``). Channels only call the agent's public
entry point (``agent.advisor.Advisor``); the agent never imports a channel."""
