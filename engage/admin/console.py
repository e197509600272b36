"""The console's working pages on the lead admin: the inbox and the pipeline board, with small JSON
endpoints their pages poll and post to. Every view reads leads through `LeadAdmin.get_queryset`
(the user's companies only) and changes them through the conversation services."""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.http import Http404, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from crm.models import Channel, Lead, Membership, Pipeline, Stage, User
from crm.selectors import company_ids_for_user
from engage.conversations.handoff import (
    MANUAL_REPLY_MAX_LENGTH,
    lead_assign,
    lead_hand_back,
    lead_manual_reply,
    lead_take_over,
)
from engage.conversations.inbox import VIEWS, inbox_page, lead_messages_after
from engage.messaging.models import Message
from shokti.admin import console_text, validation_error_text
from shokti.api.exceptions import error_body, flatten_errors

# The newest open leads a column shows (the rest one click away in the list): 25 keeps a board of five stages
# at 125 cards, a page that renders in ~40 ms.
BOARD_CARDS_PER_STAGE = 25
BOARD_COUNT_LIMIT = 10_000
THREAD_MESSAGES = 60


def person_name(user: User | None) -> str:
    return (user.full_name or user.email) if user else ""


def ai_state(lead: Lead) -> str:
    """The conversation's state in a sentence: who answers the customer now."""
    if lead.handoff_requested_at and not lead.owner_id:
        return _("Waiting for a person: the customer asked for a human")
    if lead.is_ai_paused:
        if lead.owner_id:
            return _("%(name)s has this conversation") % {"name": person_name(lead.owner)}
        return _("A person has this conversation (the AI is paused)")
    return _("AI is answering")


def sender_label(message: Message, names: dict[int, str] | None = None) -> str:
    """Who wrote a message, as people say it: "Replied by Rahima (ops)", "AI (SmartEngage)", "Customer"."""
    if message.direction == Message.Direction.INBOUND:
        return _("Customer")
    if message.agent_type == Message.AgentType.MANUAL:
        actor = (names or {}).get(_actor_id(message))
        return _("Replied by %(name)s (ops)") % {"name": actor} if actor else _("Replied by ops")
    kind = (message.message_type or "").replace("_", " ")
    if message.agent_type:
        return _("AI (%(agent)s): %(kind)s") % {"agent": message.get_agent_type_display(), "kind": kind or _("reply")}
    return _("Sent automatically (%(kind)s)") % {"kind": kind} if kind else _("Sent automatically")


def _actor_id(message: Message) -> int | None:
    job = message.job if message.job_id else None
    actor_id = (job.payload or {}).get("actor_id") if job is not None else None
    return actor_id if isinstance(actor_id, int) else None


def actor_names(messages: list[Message]) -> dict[int, str]:
    """The names of the people who wrote `messages` by hand, in one query."""
    ids = {actor_id for message in messages if (actor_id := _actor_id(message)) is not None}
    return {user.pk: person_name(user) for user in User.objects.filter(pk__in=ids)} if ids else {}


def _error(message: str, *, status: int = 400, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code="invalid" if status == 400 else "error", message=message, fields=fields),
                        status=status)


def _message_json(message: Message, names: dict[int, str] | None = None) -> dict:
    return {
        "id": message.pk,
        "direction": message.direction,
        "channel": message.get_channel_display(),
        "sender": sender_label(message, names),
        "body": message.body,
        "media_type": message.media_type,
        "status": message.get_status_display() if message.direction == Message.Direction.OUTBOUND else "",
        "status_code": message.status,
        "error": message.error[:200] if message.direction == Message.Direction.OUTBOUND else "",
        "job_id": message.job_id,
        "at": date_format(timezone.localtime(message.created_at), "SHORT_DATETIME_FORMAT"),
    }


def _lead_json(lead: Lead) -> dict:
    return {
        "id": lead.pk,
        "name": str(lead.contact.name or lead.contact.phone or lead.contact.email or lead.contact.pk),
        "company": lead.company.name,
        "stage": lead.stage.name,
        "stage_id": lead.stage_id,
        "channel": lead.get_channel_display(),
        "owner": person_name(lead.owner),
        "owner_id": lead.owner_id,
        "is_ai_paused": lead.is_ai_paused,
        "needs_human": bool(lead.handoff_requested_at),
        "ai_state": ai_state(lead),
        "url": reverse("admin:crm_lead_change", args=[lead.pk]),
    }


class ConsoleViews:
    """Mixed into the lead admin: URLs and views of the inbox and the board."""

    def console_urls(self):
        view = self.admin_site.admin_view
        return [
            path("inbox/", view(self.inbox_view), name="crm_lead_inbox"),
            path("inbox/rows/", view(self.inbox_rows_view), name="crm_lead_inbox_rows"),
            path("board/", view(self.board_view), name="crm_lead_board"),
            path("<path:object_id>/thread/", view(self.thread_view), name="crm_lead_thread"),
            path("<path:object_id>/act/<str:operation>/", view(self.act_view), name="crm_lead_act"),
        ]

    # --- reading -------------------------------------------------------------------------------
    def _lead_or_404(self, request, object_id) -> Lead:
        lead = self.get_queryset(request).select_related("contact", "company", "stage", "owner").filter(
            pk=unquote(object_id)
        ).first() if str(unquote(object_id)).isdigit() else None
        if lead is None or not self.has_view_permission(request, lead):
            raise Http404("No lead with this id.")
        return lead

    def inbox_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": _("Inbox"),
            "opts": self.opts,
            "views": [(key, label) for key, label in _view_labels().items()],
            "channels": Channel.choices,
            "rows_url": reverse("admin:crm_lead_inbox_rows"),
            "reply_max_length": MANUAL_REPLY_MAX_LENGTH,
            "can_change": self.has_change_permission(request),
            "people": _people(request.user),
        }
        return TemplateResponse(request, "admin/engage/console/inbox.html", context)

    @staticmethod
    def _scope_ids(request) -> list[int] | None:
        return company_ids_for_user(user=request.user)

    def inbox_rows_view(self, request):
        if request.method != "GET":
            return _error("GET only.", status=405)
        if not self.has_view_permission(request):
            return _error("Not allowed.", status=403)
        view = request.GET.get("view", "all")
        channel = request.GET.get("channel", "")
        if channel and channel not in Channel.values:
            return _error("Unknown channel.", fields={"channel": ["Unknown channel."]})
        try:
            page = inbox_page(company_ids=self._scope_ids(request), user=request.user, view=view, channel=channel,
                              cursor=request.GET.get("cursor") or None)
        except ValidationError as error:
            return _error("Invalid inbox request.", fields=flatten_errors(error.message_dict))
        now = timezone.now()
        return JsonResponse({
            "rows": [
                {
                    **_lead_json(row.lead),
                    "last_message": {**_message_json(row.last_message), "body": row.last_message.body[:140]},
                    "age": timesince(row.last_message.created_at, now),
                    "is_unread": row.last_message.direction == Message.Direction.INBOUND,
                }
                for row in page.rows
            ],
            "next_cursor": page.next_cursor,
        })

    def thread_view(self, request, object_id):
        if request.method != "GET":
            return _error("GET only.", status=405)
        lead = self._lead_or_404(request, object_id)
        messages = lead_messages_after(lead=lead, limit=THREAD_MESSAGES)
        names = actor_names(messages)
        return JsonResponse({
            "lead": _lead_json(lead),
            "messages": [_message_json(message, names) for message in messages],
        })

    # --- acting --------------------------------------------------------------------------------
    def act_view(self, request, object_id, operation):
        """POST take_over / hand_back / reply / assign / stage for one lead; JSON in and out."""
        if request.method != "POST":
            return _error("POST only.", status=405)
        lead = self._lead_or_404(request, object_id)
        if not self.has_change_permission(request, lead):
            return _error("You may not change this lead.", status=403)
        data = request.POST
        try:
            result = self._act(request, lead, operation, data)
        except ValidationError as error:  # services' English in the staff's language
            fields = ({name: [console_text(item.message, item.params) for item in items]
                       for name, items in error.error_dict.items()} if hasattr(error, "error_dict") else {})
            return _error(validation_error_text(error), fields=fields)
        lead = self._lead_or_404(request, object_id)
        return JsonResponse({"lead": _lead_json(lead), **result})

    def _act(self, request, lead: Lead, operation: str, data) -> dict:
        if operation == "take_over":
            with transaction.atomic():
                lead_take_over(lead=lead, actor=request.user)
                if lead.owner_id is None:
                    lead_assign(lead=lead, owner=request.user, actor=request.user)
            return {}
        if operation == "hand_back":
            lead_hand_back(lead=lead, actor=request.user)
            return {}
        if operation == "reply":
            body = data.get("body", "")
            job = lead_manual_reply(lead=lead, actor=request.user, body=body)
            return {"job_id": job.pk, "pending": {
                "id": f"job-{job.pk}", "direction": "outbound", "body": body.strip(),
                "sender": _("Replied by %(name)s (ops)") % {"name": person_name(request.user)},
                "status": _("Queued"), "status_code": "queued", "job_id": job.pk, "channel": lead.get_channel_display(),
                "at": date_format(timezone.localtime(), "SHORT_DATETIME_FORMAT"), "error": "", "media_type": "",
            }}
        if operation == "assign":
            owner_id = data.get("owner", "")
            owner = None
            if owner_id:
                if not owner_id.isdigit():
                    raise ValidationError({"owner": _("Not a person.")})
                owner = User.objects.filter(pk=int(owner_id), is_active=True).first()
                if owner is None:
                    raise ValidationError({"owner": _("Not a person.")})
            lead_assign(lead=lead, owner=owner, actor=request.user)
            return {}
        if operation == "stage":
            stage_id = data.get("stage", "")
            stage = Stage.objects.filter(pk=int(stage_id), pipeline_id=lead.pipeline_id).first() if (
                stage_id.isdigit()) else None
            if stage is None:
                raise ValidationError({"stage": _("Not a stage of this lead's pipeline.")})
            self.lead_stage_move(lead=lead, stage=stage, actor=request.user)
            return {}
        raise Http404("Unknown operation.")

    # --- the board -----------------------------------------------------------------------------
    def board_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        company_ids = self._scope_ids(request)
        pipelines = Pipeline.objects.select_related("company").order_by("company__name", "name")
        if company_ids is not None:
            pipelines = pipelines.filter(company_id__in=company_ids)
        pipelines = list(pipelines[:200])
        selected = request.GET.get("pipeline", "")
        pipeline = next((p for p in pipelines if str(p.pk) == selected), pipelines[0] if pipelines else None)
        columns = []
        if pipeline is not None:
            columns = board_columns(pipeline=pipeline, owner_filter=request.GET.get("owner", ""), user=request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Pipeline board"),
            "opts": self.opts,
            "pipelines": pipelines,
            "pipeline": pipeline,
            "columns": columns,
            "can_change": self.has_change_permission(request),
            "cards_per_stage": BOARD_CARDS_PER_STAGE,
        }
        return TemplateResponse(request, "admin/engage/console/board.html", context)


def board_columns(*, pipeline: Pipeline, owner_filter: str, user: User) -> list[dict]:
    """The pipeline's stages in order, each with its open-lead count and newest cards."""
    stages = list(Stage.objects.filter(pipeline=pipeline).order_by("order", "id"))
    # A stage belongs to one pipeline of one company (the pipeline was scoped to the user's companies):
    # by stage alone each query is a scan of the partial index lead_open_by_stage.
    leads = Lead.objects.filter(status=Lead.Status.OPEN)
    if owner_filter == "mine":
        leads = leads.filter(owner=user)
    # Bounded counts (an index-only scan of at most BOARD_COUNT_LIMIT + 1 rows a stage): "10000+" past it.
    # Ordered like the index, so the planner walks it (a stage without open leads is then free, not a table scan).
    counts = {stage.pk: leads.filter(stage=stage).order_by("-id")[: BOARD_COUNT_LIMIT + 1].count() for stage in stages}
    latest = Message.objects.filter(lead_id=OuterRef("pk")).order_by("-created_at", "-id")
    now = timezone.now()
    # Built once, not per card: a lead's URL from one reverse, each column's stage menu as HTML.
    change_url = reverse("admin:crm_lead_change", args=["__pk__"])
    unassigned = _("unassigned")
    columns = []
    for stage in stages:
        options = format_html_join(
            "", '<option value="{}"{}>{}</option>',
            ((other.pk, " selected" if other.pk == stage.pk else "", other.name) for other in stages),
        )
        # ("stage_id", "-id"): the partial index's own order, so the planner walks it rather than the primary
        # key (which it would filter row by row for a stage with few open leads). No query for an empty stage.
        cards = (
            leads.filter(stage=stage).select_related("contact", "owner")
            .annotate(last_body=Subquery(latest.values("body")[:1]))
            .order_by("stage_id", "-id")[:BOARD_CARDS_PER_STAGE]
        ) if counts.get(stage.pk) else []
        columns.append({
            "stage": stage,
            "count": counts.get(stage.pk, 0),
            "count_label": f"{BOARD_COUNT_LIMIT}+" if counts.get(stage.pk, 0) > BOARD_COUNT_LIMIT else str(
                counts.get(stage.pk, 0)),
            "stage_options": options,
            "cards": [_board_card(lead, now=now, change_url=change_url, unassigned=unassigned) for lead in cards],
        })
    return columns


def _board_card(lead: Lead, *, now, change_url: str, unassigned: str) -> dict:
    name = lead.contact.name or lead.contact.phone or lead.contact.email
    return {
        "lead": lead,
        "id": str(lead.pk),
        "url": change_url.replace("__pk__", str(lead.pk)),
        "name": name,
        "last": (lead.last_body or "")[:90],
        "meta": format_html("{} · {}", _("%(age)s old") % {"age": timesince(lead.created_at, now).split(",")[0]},
                            person_name(lead.owner) or unassigned),
        "move_label": _("Stage of %(name)s") % {"name": name},
    }


def _view_labels() -> dict[str, str]:
    labels = {
        "all": _("All open"), "needs_human": _("Needs a human"), "mine": _("Mine"), "unassigned": _("Unassigned"),
        "unread": _("Unread"), "ai": _("AI-handled"),
    }
    assert set(labels) == set(VIEWS)
    return labels


def _people(user: User) -> list[tuple[int, str]]:
    """Who a lead can be given to: staff of the user's companies."""
    company_ids = company_ids_for_user(user=user)
    people = User.objects.filter(is_active=True, is_staff=True)
    if company_ids is not None:
        people = people.filter(pk__in=Membership.objects.filter(company_id__in=company_ids).values("user_id"))
    return [(person.pk, person_name(person)) for person in people.order_by("full_name", "email")[:200]]


HOME_COUNT_LIMIT = 999


def home_summary(*, request) -> dict:
    """The console's home: what waits for a person today, each a bounded count with the page that acts on it."""
    from engage.ledger.models import Job

    user = request.user
    company_ids = company_ids_for_user(user=user)
    leads = Lead.objects.filter(status=Lead.Status.OPEN)
    jobs = Job.objects.all()
    if company_ids is not None:
        leads = leads.filter(company_id__in=company_ids)
        jobs = jobs.filter(company_id__in=company_ids)

    def bounded(queryset) -> int:
        return queryset.order_by()[: HOME_COUNT_LIMIT + 1].count()

    inbox = reverse("admin:crm_lead_inbox")
    jobs_url = reverse("admin:engage_job_changelist")
    tiles = [
        {"id": "needs-human", "label": _("Waiting for a person"), "count": bounded(leads.filter(
            handoff_requested_at__isnull=False)), "url": f"{inbox}#view=needs_human"},
        {"id": "mine", "label": _("My conversations"), "count": bounded(leads.filter(owner=user)),
         "url": f"{inbox}#view=mine"},
    ]
    if user.has_perm("engage.view_job"):
        tiles += [
            {"id": "dead-jobs", "label": _("Dead jobs to replay"), "count": bounded(jobs.filter(
                status=Job.Status.DEAD)), "url": f"{jobs_url}?status__exact=dead"},
            {"id": "queued-jobs", "label": _("Jobs waiting to run"), "count": bounded(jobs.filter(
                status=Job.Status.QUEUED)), "url": f"{jobs_url}?status__exact=queued"},
        ]
    return {"name": person_name(user), "tiles": tiles, "limit": HOME_COUNT_LIMIT,
            "links": [(_("Inbox"), inbox), (_("Pipeline board"), reverse("admin:crm_lead_board"))]}
