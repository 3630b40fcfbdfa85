import django.db.models.deletion
from django.db import migrations, models


def seed(apps, schema_editor):
    Tenant = apps.get_model("customers", "Tenant")
    Product = apps.get_model("shop", "Product")
    t = Tenant.objects.create(name="acme", schema_name="acme")
    Product.objects.create(tenant=t, name="anvil", price_cents=100, sku="A-1")
    apps.get_model("shop", "Coupon").objects.create(code="WELCOME")


class Migration(migrations.Migration):
    initial = True
    dependencies = [("customers", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
                ("sku", models.CharField(max_length=20, default="")),
                ("price_cents", models.IntegerField(default=0)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="customers.tenant"
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="Coupon",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("code", models.CharField(max_length=20)),
            ],
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
