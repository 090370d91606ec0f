from datetime import datetime

from ninja import Query, Router, Schema
from ninja.pagination import paginate

from backend.api.pagination import PageNumberPagination
from backend.api.schemas import ErrorOut, InputText
from backend.services.mentors import mentor_get, mentor_list

router = Router(tags=["mentors"])


class MentorStatsOut(Schema):
    """Public stats. Earnings are the mentor's own business: /api/auth/me, and the admin."""

    total_sessions: int
    total_minutes: int
    updated_at: datetime | None


class MentorOut(Schema):
    id: int
    name: str
    headline: str
    bio: str
    expertise: list[str]
    hourly_rate: int
    currency: str
    stats: MentorStatsOut

    @staticmethod
    def resolve_expertise(mentor):
        return [e.slug for e in mentor.expertise.all()]

    @staticmethod
    def resolve_stats(mentor):
        return {
            "total_sessions": mentor.total_sessions,
            "total_minutes": mentor.total_minutes,
            "updated_at": mentor.stats_updated_at,
        }


class MentorFilters(Schema):
    expertise: InputText | None = None
    q: InputText | None = None


@router.get("", response={200: list[MentorOut], 422: ErrorOut}, auth=None)
@paginate(PageNumberPagination, page_size=20)
def list_mentors(request, filters: Query[MentorFilters]):
    """Active mentors: `expertise` filters by topic slug, `q` searches name and headline."""
    return mentor_list(expertise=filters.expertise, search=filters.q)


@router.get("/{mentor_id}", response={200: MentorOut, 404: ErrorOut, 422: ErrorOut}, auth=None)
def get_mentor(request, mentor_id: int):
    return mentor_get(mentor_id=mentor_id)
