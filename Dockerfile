FROM python:3.11.13-slim-bookworm
# Without SECRET_KEY, the key is made on the first start and kept in the /data volume.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 REGISTRY_VAR_DIR=/data STATIC_ROOT=/app/staticfiles \
    SECRET_KEY_FILE=/data/secret-key
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are part of the image (outside the /data volume, so a rebuilt image never serves
# the static files an older one left there).
RUN python manage.py collectstatic --noinput --verbosity 0
RUN useradd --create-home registry && mkdir -p /data && chown registry /data
USER registry
EXPOSE 8000
CMD ["sh", "-c", "bash scripts/ensure-secret-key.sh \"$SECRET_KEY_FILE\" && python manage.py migrate --noinput && python manage.py ensure_bucket && python manage.py ensure_admin --url http://localhost:8000 && exec gunicorn --config registry_project/gunicorn.conf.py --bind 0.0.0.0:8000"]
