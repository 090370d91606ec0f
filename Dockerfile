# One image for web, worker and beat (docker-compose picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN python -m venv /app/.venv && /app/.venv/bin/pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic needs settings, settings need a real key: a throwaway one, never in the image.
RUN DJANGO_SECRET_KEY="$(/app/.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    /app/.venv/bin/python manage.py collectstatic --noinput --verbosity 0
ENV PATH="/app/.venv/bin:$PATH"
EXPOSE 8002
CMD ["gunicorn", "backend.wsgi", "--bind", "0.0.0.0:8002", "--workers", "3", "--access-logfile", "-"]
