"""Where each kind of job goes: one delivery function per job kind, so a new destination is one
entry in `DELIVERIES`. Each takes the configuration and the job's plan (a Clay row needs the URL
its submission was reserved on) and answers with the destination's `Outcome`.

The callback's destinations (Slack, Zapier, the Directus write-back) and Loops' (Directus feedback,
forward endpoints) can be switched off in relay.json while their jobs wait on the queue: such a job
is hopeless, not retried.
"""

from __future__ import annotations

from collections.abc import Callable

from clay_relay import directus, hooks, loops
from clay_relay.clay import send_row
from clay_relay.config import RelayConfig
from clay_relay.directus_feedback import deliver_feedback
from clay_relay.jobs import (
    ClayRowJob,
    DirectusFeedbackJob,
    DirectusPatchJob,
    LoopsContactJob,
    LoopsEventJob,
    LoopsForwardJob,
    SlackMessageJob,
    ZapierPostJob,
)
from clay_relay.outbound import Outcome
from clay_relay.runtime import get_runtime
from clay_relay.webhook_forwarding import forward_event
from clay_relay.worker.batch import Plan

Delivery = Callable[[RelayConfig, Plan], Outcome]


def no_longer_configured(
    job: SlackMessageJob | ZapierPostJob | DirectusPatchJob | DirectusFeedbackJob | LoopsForwardJob,
) -> Outcome:
    return Outcome(delivered=False, retryable=False, reason=f"{job.kind} is no longer configured", reached=False)


def deliver_clay_row(config: RelayConfig, plan: Plan) -> Outcome:
    job = plan.job_as(ClayRowJob)
    if plan.webhook is None:  # claims.reserve_clay_submissions leaves no row open without its URL
        raise LookupError(f"no Clay webhook URL was reserved for row {job.event_id}")
    return send_row(config.clay_targets[job.target], plan.webhook, job.row, job.event_id)


def deliver_loops_event(config: RelayConfig, plan: Plan) -> Outcome:
    return loops.send_event(plan.job_as(LoopsEventJob), config.loops_api)


def deliver_loops_contact(config: RelayConfig, plan: Plan) -> Outcome:
    return loops.update_contact(plan.job_as(LoopsContactJob), config.loops_api)


def deliver_slack_message(config: RelayConfig, plan: Plan) -> Outcome:
    job = plan.job_as(SlackMessageJob)
    if not (slack := config.clay_callback and config.clay_callback.slack):
        return no_longer_configured(job)
    return hooks.post_to_hook(slack.webhook_secret, {"text": job.text}, event_id=job.event_id)


def deliver_zapier_post(config: RelayConfig, plan: Plan) -> Outcome:
    job = plan.job_as(ZapierPostJob)
    if not (zapier := config.clay_callback and config.clay_callback.zapier):
        return no_longer_configured(job)
    return hooks.post_to_hook(zapier.webhook_secret, job.payload, event_id=job.event_id)


def deliver_directus_patch(config: RelayConfig, plan: Plan) -> Outcome:
    job = plan.job_as(DirectusPatchJob)
    if not (writeback := config.clay_callback and config.clay_callback.directus_writeback):
        return no_longer_configured(job)
    return directus.write_back(job, writeback)


def deliver_directus_feedback(config: RelayConfig, plan: Plan) -> Outcome:
    job = plan.job_as(DirectusFeedbackJob)
    if not (target := config.feedback_target()):
        return no_longer_configured(job)
    return deliver_feedback(job, target, get_runtime().table)


def deliver_loops_forward(config: RelayConfig, plan: Plan) -> Outcome:
    job = plan.job_as(LoopsForwardJob)
    if not (endpoint := config.loops_webhook and config.loops_webhook.forward_endpoint(job.endpoint)):
        return no_longer_configured(job)
    return forward_event(job, endpoint)


DELIVERIES: dict[type, Delivery] = {
    ClayRowJob: deliver_clay_row,
    LoopsEventJob: deliver_loops_event,
    LoopsContactJob: deliver_loops_contact,
    SlackMessageJob: deliver_slack_message,
    ZapierPostJob: deliver_zapier_post,
    DirectusPatchJob: deliver_directus_patch,
    DirectusFeedbackJob: deliver_directus_feedback,
    LoopsForwardJob: deliver_loops_forward,
}


def deliver(config: RelayConfig, plan: Plan) -> Outcome:
    return DELIVERIES[type(plan.job)](config, plan)
