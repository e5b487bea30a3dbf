FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 REGISTRY_VAR_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home registry && mkdir -p /data && chown registry /data
USER registry
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py collectstatic --noinput -v0 && python manage.py ensure_bucket && python manage.py ensure_admin --url http://localhost:8000 && exec gunicorn registry_project.wsgi --bind 0.0.0.0:8000 --worker-class gthread --workers 2 --threads 8 --timeout 120 --access-logfile -"]
