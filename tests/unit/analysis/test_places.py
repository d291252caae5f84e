from __future__ import annotations

import pytest

from incidents.analysis import morph
from incidents.analysis.normalize import clean, tokenize
from incidents.analysis.places import Gazetteer, PlaceResolver


@pytest.fixture(scope="module")
def resolver() -> PlaceResolver:
    return PlaceResolver(Gazetteer.load())


def resolve(resolver: PlaceResolver, text: str, source: str | None = None):
    return resolver.resolve(tokenize(clean(text, morph.is_known)), source)


@pytest.mark.parametrize(
    ("text", "municipality", "settlement"),
    [
        (
            "в деревне Сибирь Пасеговского сельского округа Кирово-Чепецкого района пропадает напряжение",
            "33618",
            "33618428211",
        ),
        ("в д. Сибирь Унинского района нет дороги", "33640", "33640402106"),
        ("село Старица Свечинского района, не работает телефонная связь", "33634", "33634448276"),
        ("в Кумёнах опять нет света", "33620", "33620151051"),
        ("на Филейке яма", "33701-oktyabrsky", None),
        ("Нововятск, течет крыша", "33701-novovyatsky", None),
        ("в Лянгасово не горят фонари", "33701-leninsky", None),
        ("Ленинский район Кирова, ямы", "33701-leninsky", "33701000001"),
        ("в Кирово-Чепецке мусор", "33707", "33707000001"),
        ("Кирово-Чепецкого района деревни без воды", "33618", None),
        ("КЧР, дорога", "33618", None),
        ("г. Слободской мусор", "33713", "33713000001"),
        ("Слободской р-н, дороги", "33635", None),
        ("в Вятских Полянах ямы", "33704", "33704000001"),
        ("Оричи, вода ржавая", "33630", "33630151051"),
        ("в Унях нет света", "33640", "33640151051"),
        ("белая холуница: нет связи", "33605", "33605101001"),
        ("в Юрье холодно", "33649", "33649151051"),
        # punctuation between a name and a street word: the name is no street's
        ("Жители Кирово-Чепецка, улица Сосновая: запах гари", "33707", "33707000001"),
        ("Вятские Поляны, набережная: ни одной урны", "33704", "33704000001"),
        ("Луза — кладбище за рекой, мост разрушен", "33622", None),  # a dash after a space
        ("КЧ, в парке сломаны скамейки", "33707", None),  # the town's abbreviation, in capitals
        ("Уржумская ЦРБ: на приём не попасть", "33641", None),  # an institution named after its district
        ("в Лузской больнице не работает лифт", "33622", None),
        ("ЗАТО Первомайский: нет воды", "33787", None),
        ("остановка без крыши ☔ #слободской #остановка", "33713", "33713000001"),  # a hashtag is a name
        ("Поздравляем выпускников Куменской школы!", "33620", None),
    ],
)
def test_places(resolver: PlaceResolver, text: str, municipality: str, settlement: str | None) -> None:
    res = resolve(resolver, text)
    assert res.municipality is not None, text
    assert res.municipality.code == municipality
    if settlement:
        assert res.settlement is not None and res.settlement.oktmo == settlement
    assert res.words


@pytest.mark.parametrize(
    "text",
    [
        "ключи потерял",  # an ordinary word
        "бор горит",
        "Доброе утро, земляки",  # «Добра» is a village; «доброе» is not it
        "Мост через реку отремонтировали",  # «Черезы»
        "Иван Петров пишет",
        "нет света третий день",  # no place at all
        "в д. Ключи нет воды",  # 15 villages called Ключи: the text does not say which
        "Муж починил розетку, зато сам",  # the conjunction «зато», not ЗАТО Первомайский
        "кч какой-то странный",  # «КЧ» only in capitals
    ],
)
def test_no_place(resolver: PlaceResolver, text: str) -> None:
    res = resolve(resolver, text)
    assert res.municipality is None and res.settlement is None


def test_ambiguous_name_resolved_by_named_district(resolver: PlaceResolver) -> None:
    assert resolve(resolver, "Слободской район, д. Ключи нет дороги").settlement.municipality_code == "33635"


def test_ambiguous_name_resolved_by_source(resolver: PlaceResolver) -> None:
    res = resolve(resolver, "в д. Сибирь нет света", source="33640")
    assert res.settlement is not None and res.settlement.oktmo == "33640402106"


def test_streets_are_not_settlements(resolver: PlaceResolver) -> None:
    res = resolve(resolver, "Нововятск, ул. Кирова 5 течет крыша")
    assert res.municipality.code == "33701-novovyatsky"
    weak = resolve(resolver, "на ул. Воровского провал")
    assert weak.weak and weak.municipality.code == "33701" and weak.settlement is None


@pytest.mark.parametrize(
    ("text", "municipality"),
    [
        # a post that opens with a town of the region names a neighbouring region's city in passing
        ("Луза, в аптеке нет лекарств. Ближайшая аптека в Котласе", "33622"),
        ("В Уни нет лаборатории, кровь на анализы возят в Глазов", "33640"),
        ("Белая Холуница, на Глазова не вывозят мусор", "33605"),
        # a town named later, the other region's own town or district: another region
        ("Отдыхали в Красной Поляне на новогодние, всем советую #сочи", None),
        ("Радужный, ХМАО — горячей воды нет четвёртый день", None),
        ("Ленинский район Екатеринбурга, в школе кормят просрочкой", None),
        # Kirov as a trip's destination: the post is about the writer's own place
        ("Кто едет в субботу в Киров из Орлова? Возьму попутчика", "33645"),
        ("Автобусы по маршруту до Кирова из Зуевки опаздывают на 40 минут", "33614"),
        # Kirov as the origin or the location stays Kirov
        ("Кто едет завтра из Кирова в Котельнич? Возьмите попутчика", "33701"),
        ("Живу в Кирове, а прописан в Зуевке: куда идти за справкой?", "33701"),
    ],
)
def test_the_writers_own_place_beside_another_city(
    resolver: PlaceResolver, text: str, municipality: str | None
) -> None:
    res = resolve(resolver, text)
    assert (res.municipality.code if res.municipality else None) == municipality
    assert res.other_region is (municipality is None)


@pytest.mark.parametrize(
    ("text", "kirov"),
    [
        # a curated street whose name is an ordinary word, in lower case: an adjective
        ("Пенсионерам отменили льготы в пригородных автобусах", False),
        ("Прошу вернуть скидку для студентов в пригородных электричках", False),
        # in lower case with a street word or a house number it is the street
        ("Яма на ул. пригородной у остановки", True),
        ("на профсоюзной 5 опять не убран снег", True),
        ("Яма на Пригородной у остановки", True),
    ],
)
def test_lower_case_ordinary_words_need_street_evidence(
    resolver: PlaceResolver, text: str, kirov: bool
) -> None:
    res = resolve(resolver, text)
    assert (res.municipality is not None and res.municipality.code.startswith("33701")) is kirov


@pytest.mark.parametrize(
    ("text", "municipality"),
    [
        # a street's form after «на»/«по», or with a house number, is no village or town
        ("Лифт на Московской 110 не работает с пятницы", None),
        ("С крыши дома 12 по Кирова в Лузе сошёл снег у подъезда", "33622"),
        ("Мураши, Кирова 3. Собрание провели без нас", "33624"),
        ("Торговый центр на Стахановской весь обклеен рекламой", None),
        # a number that counts something is no house number; a town keeps its own name
        ("Оричи 2 дня без света", "33630"),
        ("скорая ехала в Санчурск 1,5 часа", "33633"),
        # a town opening a sentence that names the address
        ("Горячая вода ржавая. Слободской, Володарского 5. Пятый день так", "33713"),
        ("Неделю уже так. Луза, ул. Маяковского", "33622"),
        # an everyday word opening a sentence is no village
        ("Застряли в лифте. Хорошо, соседи услышали", None),
        ("устала, крыша едет 🙃 Хорошо, что завтра пятница", None),  # an emoji ends the sentence
        ("Короче. Щиток на этаже открыт, опять", None),  # «короткий» is no village «Короткие»
        # streets at a crossing or in a list, not villages of those names
        ("Светофор на перекрёстке Московской и Карла Маркса не работает", None),
        ("Яма на углу Комсомольской и Ленина", None),
        ("Светофор на Профсоюзной — Комсомольской опять отключили", None),
        ("Отключение света на улицах Пугачёва, Свободы, Труда с 9 до 17", None),
        ("Улица Полевая, Кумёны. Канава у дороги", "33620"),  # a town after its street
        # a town's part, an institution's name in quotes, a person with a patronymic
        ("Вятские Поляны: в микрорайоне Центральный не достроили садик", "33704"),
        ("У ДК «Родина» открыт электрический шкаф", None),
        ("Спасибо фельдшеру нашей деревни Надежде Петровне", None),
    ],
)
def test_street_forms_and_sentence_headings(
    resolver: PlaceResolver, text: str, municipality: str | None
) -> None:
    res = resolve(resolver, text)
    code = res.municipality.code if res.municipality and not res.weak else None
    assert code == municipality, (text, res)


@pytest.mark.parametrize(
    ("text", "municipality"),
    [
        # a name of several words written as one, as in a hashtag
        ("контейнеры стоят прямо на тротуаре 🤦 #вятскиеполяны #тко", "33704"),
        ("хоккейная коробка вся в ямах #кировочепецк #спорт", "33707"),
        # a text all in lower case or all in capitals: its case says nothing about a town's name
        ("луза остановили ремонт дороги потому что кончились деньги", "33622"),
        ("слободской. в сад не берут. мест нет", "33713"),
        ("ВЯТСКИЕ ПОЛЯНЫ ГАЗОМ ВОНЯЕТ ОКОЛО ШКОЛЫ ЧЕТВЁРТЫЙ ДЕНЬ", "33704"),
        # … but an ordinary word is still no village there
        ("у нас бор горит третий день никто не тушит", None),
        ("в кч на ул мира дерево лежит на дороге с ночи", "33707"),
        ("пижанка улица труда тротуар разломан в двух местах", "33631"),
        # the institutions of a district's centre that is a town of its own stand in the town
        ("Вятскополянская больница получила новый автомобиль скорой помощи", "33704"),
        ("Котельничский водоканал: с 5 по 7 августа возможно понижение давления", "33710"),
        ("Уржумская ЦРБ: к терапевту не записаться", "33641"),
        ("Слободская ЦРБ: к окулисту талонов нет", "33713"),
        # «под» a town of its own: the district around it
        ("Полигон под Слободским опять горит, дым до города доходит", "33635"),
        ("Под Котельничем дорогу не чистили неделю", "33619"),
        # … also with an adjective between («краеведческий музей»), and the district's own ones
        ("Котельничский краеведческий музей закрыт на ремонт третий год", "33710"),
        ("Яранская районная библиотека осталась без отопления", "33650"),
        ("Зуевская подстанция скорой без тёплого гаража", "33614"),
        ("Слободское ЖКХ опять отключило воду без предупреждения", "33713"),
        # a short name whose case form is an everyday word's («туже»), after a preposition
        ("В Туже ни одного хирурга, с переломом везут в Котельнич", "33638"),
        ("Фельдшер не может доехать до Колобова уже неделю", "33626"),
        ("Спасибо дворнику Николаю, у подъезда посыпано", None),
        # a town's form is not also a village's stem («Ильинске» is not «Ильинское»)
        ("Старая водонапорная башня в Ильинске накренилась", "33636"),
        # a town's name in lower case counts, a form of an everyday word does not
        ("Мы из нолинска, дорогу не чистят", "33627"),
        ("Лифт опять сломался. Вчера в нём застрял сосед, вызволяли два часа", None),
        ("Вопрос к старожилам: где раньше в городе был кинотеатр?", None),
        # «Поляны» alone is the town (a village of that name needs its marker)
        ("У нас в Полянах на Азина кабель висит со вчерашнего дня", "33704"),
        ("В д. Поляны второй день нет света", "33618"),
        # Kirov's streets after «у», «от», «до», «и», or after a first name, are no villages
        ("Светофор на перекрёстке Октябрьского проспекта и Московской мигает", "33701"),
        ("Ямы на Октябрьском проспекте от Воровского до Ленина по колено", "33701"),
        ("Провод лежит на тротуаре у остановки на Ивана Попова", None),
        ("Какой лёд сейчас на Вятке у Кирова?", "33701"),
        # the city of Kirov's institutions, when no place is named (not «Кировская область»)
        ("В Кировском драмтеатре сломан подъёмник для колясок", "33701"),
        ("Электронный дневник кировских школ опять не открывается", "33701"),
        ("В кардиологии Кировской областной больницы нет горячей воды", "33701"),
        ("Кировская область получит деньги на дороги", None),
        # a town's residents, when no place is named
        ("Кировчане, подскажите, где сдать старый холодильник на утилизацию?", "33701"),
        ("Котельничане сообщают, что рыбаки выходят на тонкий лёд у моста", "33710"),
        ("В Казани открыли новую станцию метро, красиво. Всем кировчанам советую", None),
    ],
)
def test_hashtags_texts_without_case_and_institutions(
    resolver: PlaceResolver, text: str, municipality: str | None
) -> None:
    res = resolve(resolver, text)
    assert (res.municipality.code if res.municipality else None) == municipality, (text, res)


def test_ordinary_word_with_marker_counts(resolver: PlaceResolver) -> None:
    res = resolve(resolver, "Свечинский район, с. Старица")
    assert res.settlement is not None and res.settlement.name == "Старица"


def test_the_address_ends_with_its_sentence(resolver: PlaceResolver) -> None:
    res = resolve(resolver, "Кирово-Чепецк, улица Сосновая. Третью неделю запах гари")
    assert res.address == "улица Сосновая"
    assert resolve(resolver, "ул. Н. Ершова, 5: яма").address.startswith("ул. Н Ершова")


@pytest.mark.parametrize(
    "text",
    [
        "Ижевск, Ленинский район Ижевска, ул. Буммашевская — открытый колодец",
        "Мы в Казани, скорая ехала 1 час 40 минут в Советский район Казани",
        "Киров Калужской области, ул. Пролетарская — во дворе ямы",
        "#ижевск вот это наш Октябрьский район, колея на Удмуртской",
        # a city of several words inflects them together
        "Дед в Набережных Челнах, ему прекратили доплату, помогите",
        "В Йошкар-Оле на Ленинском проспекте провалился асфальт",
        "Живу в Санкт-Петербурге на Садовой, третий день нет горячей воды",
        "В Великих Луках на улице Ленина яма на яме",
    ],
)
def test_other_regions_share_district_names_and_kirov(resolver: PlaceResolver, text: str) -> None:
    res = resolve(resolver, text)
    assert res.other_region and res.municipality is None, text


@pytest.mark.parametrize(
    "text",
    [
        "Переехали из Кирова в Екатеринбург. В садик очередь 2 года, частный дорогой",
        "Живу теперь в Ижевске, ул. Пушкинская. Батареи еле тёплые. Дома в Кирове такого не было",
        "Кострома: бабушке 89 лет, соцработник приходит раз в две недели. Я сам из Кирова",
        "Казань, Азино. В подъезде пахнет газом неделю. У нас в Кирове бы уже приехали",
        "Калужская область, Киров: начислили за вывоз мусора на четверых, прописан один",
        "Киров Калужской области, это не наш Киров: на Пролетарской одни ямы",
        "Нижний, Сормовский район. Очередь в садик три года",
        "Вчера в Нижнем на Большой Покровской провалился асфальт, машина колесом ушла",
        "Кто в Перми был на фестивале? Хотим в следующем году с Кирова приехать",
        "Кто из Кирова был в Суздале? Посоветуйте гостиницу",
        "В Ижевске на Удмуртской ямы по колено. Гощу у сестры: у нас в Кирове хоть латают",
        "В Перми скверы с туалетами, а у нас в Кирове ни одного в центре",
        "Съездили в Питер, Невский восторг. У нас в Кирове такого нет 😄 #питер",
        "Трасса Киров — Пермь: за границей края сплошные ямы, дорожники, ау",
        "Ночной поезд Киров — Нижний Новгород ещё ходит?",
        "Киров отдыхает: в Казани у школы будка трансформаторная открыта",
        "Пермяки, где на Комсомольском проспекте поесть пельмени?",
        "Республика Коми: вдоль трассы на Киров связи нет, случись авария — не позвонить",
        "Поезд Москва — Пермь через Киров: в плацкарте не работает отопление",
        "В Москве на Ленинском проспекте пробка на два часа. Скучаю по Кирову 😂",
        "Радужный, ХМАО — горячей воды нет четвёртый день",
        "Приехала в Вологду к дочке, там чисто. Масло везу домой в Киров 😊",
        "Мама в Советске Калининградской области полгода ждёт перерасчёт пенсии",
        "Владимир, Октябрьский проспект: плитка на тротуаре вывернута",
        "Киров — это цветочки, в Вологде на тротуаре два открытых люка",
        # where the writer lives, beside the place the post is about
        "Пишу про родной Котлас, хоть и живу теперь в Кирове. У мамы на Ленина нет отопления",
        "Бабушка одна в деревне в Архангельской области, я живу в Кирове. Соцработницу сократили",
        # a trip's end, beside the place the post is about
        "Неделю гостили в Самаре, набережная чудо. Вчера вернулись в Киров 🙂",
        "Из Уфы в Киров ехать на машине или поездом, что посоветуете?",
        "Под Глазовом колею не объехать, до Кирова доехали без колпаков",
        # a comparison, a wish, a post written from elsewhere, the city set aside named again
        "Приехали в отпуск в Сочи, а пляжи закрыты из-за шторма. В Кирове хоть дождь привычный",
        "Были в Йошкар-Оле, набережная шикарная. Нам бы в Кирове так",
        "В Сыктывкаре в гостинице три раза выключали свет. Дома в Кирове такого не припомню",
        "Пишу из Ижевска: в поликлинике нет педиатра. Прочитала, что у вас в Кирове тоже такое",
        "Друзья, пишу не про Киров, а про Ижевск: двор на Пушкинской разбит",
        "Переехали из Кирова в Казань, автобусы ходят по расписанию. Скучаю только по Вятке",
        # another city's landmark by its adjective; a greeting or thanks to Kirov
        "Казанский Кремль вечером красивый, ездили всей семьёй",
        "Ижевский пруд замёрз, катались на коньках. Выбрались из Кирова на денёк",
        "Пермский «Парк Горького» понравился детям, приехали из Кирова на два дня",
        "Отдыхали у родни в Котласе, погода чудесная. Привет Кирову!",
        "Вернулись из Питера, белые ночи замучили. Кирову за тёмные ночи спасибо",
        # where the writer is
        "Мама в Котласе, второй день без света. Сама я в Кирове, не знаю, куда звонить",
    ],
)
def test_a_post_about_another_region_that_mentions_kirov_aside(resolver: PlaceResolver, text: str) -> None:
    """The writer's origin («из Кирова»), a comparison in a post that opens with the other city or
    follows a move there, and Kaluga's Kirov are asides: no Kirov place."""
    res = resolve(resolver, text)
    assert res.other_region and res.municipality is None, text


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("В Казани дороги сделали, а у нас в Кирове ямы по колено на Ленина", "33701"),
        ("В Кирове на Профсоюзной яма, а в Москве бы давно заделали", "33701"),
        ("Живу в Кирове на Ленина, сын в Перми. У нас во дворе яма, а у него всё чисто", "33701"),
        ("Переехали в Киров из Казани: на Ленина во дворе яма, в Казани такого не было", "33701"),
        ("После Казани приехали в Киров, а в Театральном сквере фонари не горят", "33701"),
        ("В Перми дворы метут каждый день, а у нас в Кирове на Комсомольской окурки", "33701"),
        ("пгт Уни: отменили автобус на Глазов, а для нас Глазов ближе Кирова", "33640"),
        ("Автобус Киров — Нолинск снова не пришёл, ждали час", "33627"),
        ("Из Кстинино до Кирова проезд опять подорожал", "33618"),
        ("Киров, Лянгасово: воды нет с утра", "33701-leninsky"),
        ("Маршрут Киров — Порошино опять опоздал на полчаса", "33701"),
        ("Нижний этаж затопило, в подвале вода. г. Слободской, ул. Советская", "33713"),
        ("Мы в Нижнем Шугураке, свет отключили второй день", "33623"),
        ("В Казани ямы засыпают за день, а у нас бы в Кирове на Ленина так", "33701"),
        ("В Казани ремонт сделали, а у нас в Кирове тоже яма на Комсомольской", "33701"),
        ("г. Киров, ул. Казанская, 5: открытый люк у подъезда", "33701"),
        ("В Кирове на Казанской яма, а в Перми бы давно заделали", "33701"),
        ("На Московской у цирка в Кирове открытый люк", "33701"),
    ],
)
def test_kirov_stays_the_subject_of_a_comparison(resolver: PlaceResolver, text: str, code: str) -> None:
    res = resolve(resolver, text)
    assert not res.other_region and res.municipality is not None and res.municipality.code == code, text


def test_a_kirov_region_district_still_counts_beside_another_region(resolver: PlaceResolver) -> None:
    """A district name only the Kirov region has counts; one many cities have («Советский
    район») does not beside another region's city (the text does not say which it is)."""
    res = resolve(resolver, "Дочь в Москве, а в Лузском районе опять нет связи")
    assert not res.other_region and res.municipality is not None and res.municipality.code == "33622"
