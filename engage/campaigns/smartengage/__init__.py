"""SmartEngage: the seed's ten-step reminder workflow, for one customer and in bulk.

For each customer: 1 consent, 2 frequency caps (checked first, then reserved atomically in the
transaction that writes the intent), 3 context (customer, service), 4 booking history, then the
prompt from the latest *approved* template versions (a draft never goes out), 5 generation (the
shared AI client: concurrent in bulk, AISession recorded, fallback on failure), 6-7 the signed
booking deep link put where the model left the placeholder and the safety filter on that final
text, in the client (the link counts towards the SMS length and must be there; on rejection the
approved fallback with the link, judged too; when that fails as well nothing is sent: skipped as
safety_rejected with both verdicts, a configuration problem to fix), 8 the send through a ledger
job and `message_send` on the channel, 9 the `engage.Message` with correlation id and template
version, 10 metrics.

In a campaign run each person also gets a `CampaignRecipient` row (see engage.campaigns.models).
A dry run does everything up to the send and records what it would have sent.

The package follows those steps: `outcomes` (what happened to each person), `planning` (1-4 and the
prompt), `generation` (5-7), `intents` (8: reserve, write intents, jobs and queued messages in one
transaction), `sending` (9-10: the send job and its one-statement record), `pipeline` (a batch end to
end, one customer, bulk, and the batches of a campaign run).
"""
