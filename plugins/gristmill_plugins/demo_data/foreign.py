"""Non-English pages: French, German, Spanish and Russian prose (towns, names, sites, sentences)."""

import random
from typing import Any

from gristmill_plugins.demo_data.article import Article
from gristmill_plugins.demo_data.vocab import _format, _paragraphs

FOREIGN: dict[str, dict[str, Any]] = {
    "fr": {
        "sites": (
            ("Le Journal de la Vallée", "journal-vallee.example"),
            ("Balades et Terroirs", "balades-terroirs.example"),
            ("La Gazette du Port", "gazette-du-port.example"),
        ),
        "towns": (
            "Beaulieu-sur-Loire",
            "Montfleury",
            "Saint-Aubin",
            "Villeneuve-les-Bois",
            "Roquebrune",
            "Castelmoron",
            "Pontaven",
            "Sainte-Colombe",
        ),
        "names": ("Claire", "Sophie", "Camille", "Isabelle", "Margaux", "Juliette"),
        "months": ("janvier", "mars", "mai", "juin", "juillet", "septembre", "octobre"),
        "titles": (
            "{town} : une petite ville au bord de l'eau",
            "Un week-end à {town}",
            "La vie quotidienne à {town}",
            "Découvrir {town} hors saison",
        ),
        "nav": ("Accueil", "Actualités", "Tourisme", "Culture", "À propos", "Contact"),
        "footer": "Tous droits réservés.",
        "by": "Par",
        "sentences": (
            "{town} est une petite ville située au bord de la rivière, à quelques kilomètres de la mer.",
            "Chaque samedi matin, le marché s'installe sur la place principale et attire des habitants de toute "
            "la région.",
            "On y trouve des fromages, du pain frais, des légumes de saison et des fleurs coupées.",
            "{name} tient une boulangerie dans la rue de l'église depuis plus de {n} ans.",
            "Selon elle, le secret d'un bon pain est la patience, car la pâte doit reposer toute la nuit.",
            "En été, les touristes viennent surtout pour les plages et les sentiers qui longent la falaise.",
            "L'hiver est plus calme, mais c'est la saison préférée de nombreux habitants.",
            "La mairie a récemment rénové l'ancienne gare, qui accueille désormais une bibliothèque et un café.",
            "Les enfants de l'école primaire ont planté un jardin potager derrière le bâtiment.",
            "Ils y cultivent des tomates, des haricots et des herbes aromatiques qu'ils vendent ensuite au marché.",
            "L'histoire de la ville remonte au Moyen Âge, lorsque des moines ont construit un moulin sur la rivière.",
            "Au dix-neuvième siècle, l'arrivée du chemin de fer a profondément transformé l'économie locale.",
            "Aujourd'hui, la commune compte environ {pop} habitants.",
            "Pour se rendre à {town}, le plus simple est de prendre le train jusqu'à la gare voisine, puis le bus.",
            "Les randonneurs apprécient particulièrement le chemin qui mène au vieux phare.",
            "Il faut compter environ trois heures de marche pour faire l'aller et le retour.",
            "Le festival de musique, organisé chaque année en {month}, réunit des artistes venus de toute la France.",
            "Les restaurants du port proposent du poisson frais, des moules et une excellente soupe de légumes.",
            "Beaucoup de jeunes sont partis travailler dans les grandes villes, mais certains reviennent ouvrir des "
            "commerces.",
            "Le climat est doux, même si le vent souffle fort pendant les mois d'automne.",
            "Les habitants sont fiers de leur patrimoine et participent nombreux aux journées portes ouvertes.",
            "Celui qui cherche le calme trouvera ici de nombreux endroits pour lire, se promener et se reposer.",
        ),
    },
    "de": {
        "sites": (
            ("Heimatblatt Online", "heimatblatt.example"),
            ("Wandern und Genießen", "wandern-geniessen.example"),
            ("Das Dorfecho", "dorfecho.example"),
        ),
        "towns": (
            "Lindenau",
            "Birkenfeld",
            "Steinbach",
            "Rosenthal",
            "Ahrweiler",
            "Kirchhain",
            "Waldhausen",
            "Eichstedt",
        ),
        "names": ("Katrin", "Sabine", "Monika", "Ulrike", "Petra", "Susanne"),
        "months": ("Januar", "März", "Mai", "Juni", "Juli", "September", "Oktober"),
        "titles": (
            "Ein Wochenende in {town}",
            "{town}: eine kleine Stadt am Fluss",
            "Alltag in {town}",
            "Unterwegs in {town} und Umgebung",
        ),
        "nav": ("Startseite", "Aktuelles", "Tourismus", "Kultur", "Über uns", "Kontakt"),
        "footer": "Alle Rechte vorbehalten.",
        "by": "Von",
        "sentences": (
            "{town} ist eine kleine Stadt am Ufer eines ruhigen Flusses, umgeben von Wäldern und Feldern.",
            "Jeden Samstag findet auf dem Marktplatz ein Wochenmarkt statt, der Besucher aus der ganzen Umgebung "
            "anzieht.",
            "Dort gibt es frisches Brot, Käse aus der Region, Gemüse der Saison und selbstgemachte Marmelade.",
            "{name} betreibt seit über {n} Jahren eine kleine Bäckerei in der Nähe der Kirche.",
            "Das Geheimnis eines guten Brotes sei Geduld, sagt sie, denn der Teig müsse über Nacht ruhen.",
            "Im Sommer kommen viele Wanderer, um die alten Wege durch den Wald und entlang des Flusses zu erkunden.",
            "Der Winter ist ruhiger, aber gerade diese Jahreszeit lieben viele Einwohner besonders.",
            "Die Gemeinde hat vor kurzem den alten Bahnhof renoviert, in dem sich jetzt eine Bibliothek und ein "
            "Café befinden.",
            "Die Kinder der Grundschule haben hinter dem Gebäude einen Gemüsegarten angelegt.",
            "Dort wachsen Tomaten, Bohnen und Kräuter, die später auf dem Markt verkauft werden.",
            "Die Geschichte des Ortes reicht bis ins Mittelalter zurück, als Mönche eine Mühle am Fluss bauten.",
            "Im neunzehnten Jahrhundert veränderte die Eisenbahn das Leben der Menschen grundlegend.",
            "Heute leben in der Gemeinde etwa {pop} Menschen.",
            "Am einfachsten erreicht man {town} mit dem Zug bis zum Nachbarort und von dort mit dem Bus.",
            "Besonders beliebt ist der Wanderweg, der zur alten Burgruine auf dem Hügel führt.",
            "Für den Hin- und Rückweg sollte man ungefähr drei Stunden einplanen.",
            "Das Musikfest, das jedes Jahr im {month} stattfindet, lockt Künstler aus dem ganzen Land an.",
            "In den Gasthäusern am Fluss gibt es frischen Fisch, Kartoffelsalat und hausgemachten Kuchen.",
            "Viele junge Leute sind in die großen Städte gezogen, doch einige kehren zurück, um hier ein eigenes "
            "Geschäft zu eröffnen.",
            "Das Klima ist mild, auch wenn im Herbst oft ein kräftiger Wind weht.",
            "Die Einwohner sind stolz auf ihre Geschichte und engagieren sich in vielen Vereinen.",
            "Wer Ruhe sucht, findet hier viele schöne Plätze zum Lesen, Spazierengehen und Nachdenken.",
        ),
    },
    "es": {
        "sites": (
            ("Crónicas del Pueblo", "cronicas-pueblo.example"),
            ("Rutas y Sabores", "rutas-sabores.example"),
            ("El Diario de la Comarca", "diario-comarca.example"),
        ),
        "towns": (
            "Villanueva del Río",
            "San Martín de la Vega",
            "Valdemoro",
            "Torrealta",
            "Fuentesanta",
            "Castrillo",
            "Peñaflor",
            "Robledo",
        ),
        "names": ("Lucía", "Carmen", "Elena", "Pilar", "Marta", "Rocío"),
        "months": ("enero", "marzo", "mayo", "junio", "julio", "septiembre", "octubre"),
        "titles": (
            "Un fin de semana en {town}",
            "{town}: un pueblo junto al río",
            "La vida diaria en {town}",
            "Descubrir {town} fuera de temporada",
        ),
        "nav": ("Inicio", "Noticias", "Turismo", "Cultura", "Quiénes somos", "Contacto"),
        "footer": "Todos los derechos reservados.",
        "by": "Por",
        "sentences": (
            "{town} es un pequeño pueblo situado junto al río, a pocos kilómetros de la costa.",
            "Todos los sábados por la mañana se celebra un mercado en la plaza mayor, que atrae a vecinos de toda "
            "la comarca.",
            "Allí se pueden comprar quesos, pan recién hecho, verduras de temporada y flores.",
            "{name} tiene una panadería en la calle de la iglesia desde hace más de {n} años.",
            "Según ella, el secreto de un buen pan es la paciencia, porque la masa debe reposar toda la noche.",
            "En verano llegan muchos turistas atraídos por las playas y los senderos que recorren los acantilados.",
            "El invierno es más tranquilo, pero es la estación favorita de muchos habitantes.",
            "El ayuntamiento ha restaurado la antigua estación de tren, que ahora alberga una biblioteca y una "
            "cafetería.",
            "Los niños de la escuela han plantado un huerto detrás del edificio.",
            "Allí cultivan tomates, judías y hierbas aromáticas que después venden en el mercado.",
            "La historia del pueblo se remonta a la Edad Media, cuando unos monjes construyeron un molino junto al "
            "río.",
            "En el siglo diecinueve, la llegada del ferrocarril transformó la economía de la zona.",
            "Hoy en día viven en el municipio unas {pop} personas.",
            "Para llegar a {town}, lo más sencillo es tomar el tren hasta la estación más cercana y después el "
            "autobús.",
            "A los excursionistas les encanta el camino que lleva hasta el viejo faro.",
            "Hay que calcular unas tres horas para ir y volver a pie.",
            "El festival de música, que se celebra cada año en {month}, reúne a artistas de todo el país.",
            "Los restaurantes del puerto ofrecen pescado fresco, mejillones y una sopa de verduras excelente.",
            "Muchos jóvenes se marcharon a trabajar a las grandes ciudades, pero algunos vuelven para abrir sus "
            "propios negocios.",
            "El clima es suave, aunque en otoño el viento sopla con fuerza.",
            "Los vecinos están orgullosos de su patrimonio y participan en las fiestas tradicionales.",
            "Quien busque tranquilidad encontrará aquí muchos rincones para leer, pasear y descansar.",
        ),
    },
    "ru": {
        "sites": (
            ("Районные вести", "rayonnye-vesti.example"),
            ("Родной край", "rodnoy-kray.example"),
            ("Городская газета", "gorodskaya-gazeta.example"),
        ),
        "towns": ("Берёзовка", "Озёрск", "Светлогорье", "Каменка", "Липовка", "Сосновка", "Родники", "Ключи"),
        "names": ("Анна", "Мария", "Елена", "Ольга", "Татьяна", "Наталья"),
        "months": ("январе", "марте", "мае", "июне", "июле", "сентябре", "октябре"),
        "titles": (
            "Выходные в городе {town}",
            "{town}: маленький город у реки",
            "Жизнь в городе {town}",
            "Путешествие в {town}",
        ),
        "nav": ("Главная", "Новости", "Туризм", "Культура", "О нас", "Контакты"),
        "footer": "Все права защищены.",
        "by": "Автор:",
        "sentences": (
            "{town} — небольшой город на берегу тихой реки, окружённый лесами и полями.",
            "Каждую субботу на центральной площади открывается рынок, куда приезжают жители окрестных деревень.",
            "Там продают свежий хлеб, домашний сыр, овощи и мёд.",
            "{name} уже более {n} лет держит небольшую пекарню рядом с церковью.",
            "По её словам, главный секрет хорошего хлеба — терпение, потому что тесто должно стоять всю ночь.",
            "Летом сюда приезжает много туристов, которые гуляют по лесным тропам и купаются в реке.",
            "Зимой в городе спокойнее, но многие жители любят именно это время года.",
            "Недавно старое здание вокзала отремонтировали, и теперь там работают библиотека и кафе.",
            "Дети из местной школы посадили огород за зданием школы.",
            "История города начинается в средние века, когда монахи построили мельницу на реке.",
            "В девятнадцатом веке железная дорога полностью изменила жизнь местных жителей.",
            "Сегодня здесь живёт около {pop} человек.",
            "Проще всего добраться сюда на поезде до соседней станции, а затем на автобусе.",
            "Ежегодный музыкальный фестиваль, который проходит в {month}, собирает артистов со всей страны.",
            "Многие молодые люди уехали работать в большие города, но некоторые возвращаются и открывают своё дело.",
            "Климат здесь мягкий, хотя осенью часто дует сильный ветер.",
            "Жители гордятся своей историей и охотно участвуют в городских праздниках.",
            "Кто ищет тишины, найдёт здесь много мест для чтения, прогулок и отдыха.",
        ),
    },
}


def _foreign_article(lang: str, rng: random.Random) -> Article:
    spec = FOREIGN[lang]
    ctx = {
        "town": rng.choice(spec["towns"]),
        "name": rng.choice(spec["names"]),
        "n": rng.randint(5, 30),
        "pop": rng.choice(("1 200", "2 500", "3 800", "4 100", "6 300", "9 700"))
        if lang != "ru"
        else str(rng.randint(12, 97) * 100),
        "month": rng.choice(spec["months"]),
    }
    pool = list(spec["sentences"])
    rng.shuffle(pool)
    sentences = [_format(t, ctx) for t in pool[: rng.randint(10, len(pool))]]
    paragraphs = _paragraphs(sentences, rng, 3, 5)
    return Article(title=_format(rng.choice(spec["titles"]), ctx), sections=[(None, paragraphs)], topic=lang, lang=lang)


def _ascii(text: str) -> str:
    return text.translate(str.maketrans("àâäáçéèêëíîïñóôöúùûüßÀÂÉÈÎÔÛÜÖÄÑ", "aaaaceeeeiiinooouuuusAAEEIOUUOAN"))
