"""Demo data for `make run`: a dozen mentors, one mentee and a demo admin. Safe to run again.

Demo accounts with a published password: for a developer's machine, never production."""
from django.core.management.base import BaseCommand
from django.db import transaction

from backend.models import Expertise, Mentor, User

DEMO_PASSWORD = "demo-pass-2026"
MENTEE_EMAIL = "mentee@demo.myroadmap.local"
ADMIN_EMAIL = "admin@demo.myroadmap.local"

EXPERTISE = {
    "python": "Python",
    "django": "Django",
    "system-design": "System design",
    "frontend": "Frontend",
    "data": "Data engineering",
    "career": "Career growth",
    "devops": "DevOps",
    "ml": "Machine learning",
}

# name, headline, hourly rate in minor units, currency, expertise slugs
MENTORS = [
    ("Ada Lovelace", "Analytical engines and clean Python", 12000, "usd", ["python", "data"]),
    ("Grace Hopper", "Compilers, COBOL and shipping", 15000, "usd", ["system-design", "career"]),
    ("Linus Kowalski", "Kernel-level debugging", 9000, "eur", ["devops", "system-design"]),
    ("Margaret Hamilton", "Software that lands on the moon", 20000, "usd", ["system-design", "career"]),
    ("Guido Vermeer", "Idiomatic Python for teams", 11000, "eur", ["python", "django"]),
    ("Barbara Liskov", "Abstractions that age well", 18000, "usd", ["system-design"]),
    ("Tim Lee", "The web, from HTTP up", 8000, "gbp", ["frontend", "django"]),
    ("Katherine Johnson", "Numbers you can trust", 13000, "usd", ["data", "ml"]),
    ("Alan Turing", "Machine learning from first principles", 16000, "gbp", ["ml", "python"]),
    ("Radia Perlman", "Networks and reliable systems", 14000, "usd", ["devops", "system-design"]),
    ("Frances Allen", "Performance work and compilers", 10000, "eur", ["python", "system-design"]),
    ("Hedy Lamarr", "From idea to product", 7500, "usd", ["career", "frontend"]),
]


def mentor_email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@demo.myroadmap.local"


class Command(BaseCommand):
    help = "Create demo mentors, a demo mentee and a demo admin (idempotent) and print their logins."

    @transaction.atomic
    def handle(self, *args, **options):
        topics = {
            slug: Expertise.objects.get_or_create(slug=slug, defaults={"name": name})[0]
            for slug, name in EXPERTISE.items()
        }
        for name, headline, rate, currency, slugs in MENTORS:
            user = self._user(mentor_email(name), name)
            mentor, _ = Mentor.objects.update_or_create(
                user=user,
                defaults={"name": name, "headline": headline, "hourly_rate": rate, "currency": currency, "is_active": True},
            )
            mentor.expertise.set([topics[s] for s in slugs])
        self._user(MENTEE_EMAIL, "Demo Mentee")
        admin = self._user(ADMIN_EMAIL, "Demo Admin")
        if not (admin.is_staff and admin.is_superuser):
            admin.is_staff = admin.is_superuser = True
            admin.save(update_fields=["is_staff", "is_superuser"])

        self.stdout.write(self.style.SUCCESS(f"Seeded {len(MENTORS)} mentors and a demo mentee."))
        self.stdout.write(f"  mentee login: {MENTEE_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write(f"  mentor login: {mentor_email(MENTORS[0][0])} / {DEMO_PASSWORD} (any mentor, same password)")
        self.stdout.write(f"  admin login:  {ADMIN_EMAIL} / {DEMO_PASSWORD} (/admin/)")

    def _user(self, email: str, name: str) -> User:
        user, created = User.objects.get_or_create(email=email, defaults={"name": name})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        return user
